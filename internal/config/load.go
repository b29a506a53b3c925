package config

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// diagnosticWidth is the column at which rendered details are wrapped.
const diagnosticWidth = 100

// Sources holds the parsed job files of a load, so that diagnostics can be
// rendered with the source lines they point at. The zero value holds no files.
type Sources struct {
	files map[string]*hcl.File
	order []string // file names in load order, for sorting diagnostics
}

// WriteDiagnostics renders diags as plain text (no color). Each starts with a
// compiler-style "FILE:LINE:COL: error: SUMMARY" line, which editors and CI logs
// link to, followed by HCL's own rendering with the source snippet it points at.
func (s *Sources) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	var files map[string]*hcl.File
	if s != nil {
		files = s.files
	}
	tw := hcl.NewDiagnosticTextWriter(w, files, diagnosticWidth, false)
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject != nil {
			_, err := fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
			if err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
}

// Load reads and decodes the job files at paths into one Config. A path is a
// file or a directory; a directory contributes every *.hcl file directly in it,
// in name order. A file named twice is read once.
//
// Load reports every problem it finds in all files, not just the first. The
// Config is nil if and only if diags has errors; the Sources are never nil.
func Load(paths ...string) (*Config, *Sources, hcl.Diagnostics) {
	src := &Sources{files: map[string]*hcl.File{}}
	dec := newDecoder(evalContext(processEnv))
	var diags hcl.Diagnostics
	if len(paths) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No job files",
			Detail:   "No job file or directory was given.",
		})
	}
	var names []string
	var files [][]item
	for _, p := range paths {
		found, d := expand(p)
		diags = append(diags, d...)
		names = append(names, found...)
	}
	for _, name := range names {
		name = filepath.Clean(name)
		if _, dup := src.files[name]; dup {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Failed to read job file",
				Detail:   fmt.Sprintf("The job file %q could not be read: %s.", name, errDetail(err)),
			})
			continue
		}
		items, d := src.load(name, data, dec)
		diags = append(diags, d...)
		files = append(files, items)
	}
	return src.finish(dec, files, diags)
}

// Parse decodes a single job file held in memory; filename is only used in
// diagnostics. It is the entry point for tests and fuzzing and behaves like
// Load given that one file.
func Parse(filename string, src []byte) (*Config, *Sources, hcl.Diagnostics) {
	return parse(filename, src, pieceSize)
}

// parse is Parse, with the pieces a file is cut into of at least size bytes.
func parse(filename string, src []byte, size int) (*Config, *Sources, hcl.Diagnostics) {
	s := &Sources{files: map[string]*hcl.File{}}
	dec := newDecoder(evalContext(processEnv))
	dec.pieceSize = size
	items, diags := s.load(filename, src, dec)
	return s.finish(dec, [][]item{items}, diags)
}

// finish merges the decoded files and settles the result of a load.
func (s *Sources) finish(dec *decoder, files [][]item, diags hcl.Diagnostics) (*Config, *Sources, hcl.Diagnostics) {
	cfg, d := merge(dec, files)
	diags = s.sort(append(diags, d...))
	if diags.HasErrors() {
		cfg = nil
	}
	return cfg, s, diags
}

// expand turns a path into the job files it names.
func expand(path string) ([]string, hcl.Diagnostics) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read job files",
			Detail:   fmt.Sprintf("The path %q could not be read: %s.", path, errDetail(err)),
		}}
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read job files",
			Detail:   fmt.Sprintf("The directory %q could not be read: %s.", path, errDetail(err)),
		}}
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") {
			continue
		}
		names = append(names, filepath.Join(path, e.Name()))
	}
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No job files",
			Detail:   fmt.Sprintf("The directory %q contains no *.hcl files.", path),
		}}
	}
	return names, nil
}

// errDetail drops the path an *os.PathError repeats, since the detail names it.
func errDetail(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// load parses and decodes one file, and keeps it for rendering diagnostics. It returns the
// file's blocks, decoded, or none if the file is not fit to decode: decoding a file with
// syntax errors would cascade into confusing follow-up errors. A file that parses cleanly
// in pieces (see pieces.go) keeps its source and an index of its blocks, not its syntax
// tree.
func (s *Sources) load(name string, data []byte, dec *decoder) ([]item, hcl.Diagnostics) {
	if items, blocks, ok := dec.pieces(name, cut(data, dec.pieceSize)); ok {
		s.files[name] = &hcl.File{Bytes: data, Nav: blocks}
		s.order = append(s.order, name)
		return items, nil
	}
	f, diags := s.parseWhole(name, data)
	if f == nil {
		return nil, diags
	}
	content, d := f.Body.Content(fileSchema())
	diags = append(diags, d...)
	if content == nil {
		return nil, diags
	}
	items := make([]item, len(content.Blocks))
	parallel(len(items), func(i int) { items[i] = dec.block(content.Blocks[i]) })
	return items, diags
}

// parseWhole parses one file in one piece, keeps it for rendering and rejects
// what must not be evaluated. It returns the file only if it is fit to decode.
func (s *Sources) parseWhole(name string, data []byte) (*hcl.File, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(data, name, hcl.InitialPos)
	if f == nil {
		return nil, diags
	}
	s.files[name] = f
	s.order = append(s.order, name)
	if diags.HasErrors() {
		return nil, diags
	}
	if body, ok := f.Body.(*hclsyntax.Body); ok {
		diags = append(diags, checkNumbers(body)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return f, diags
}

// sort orders diags by file (in load order) and position, so output is stable
// even though HCL reports some problems in map order. Diagnostics without a
// subject (unreadable paths) come first.
func (s *Sources) sort(diags hcl.Diagnostics) hcl.Diagnostics {
	fileIndex := func(d *hcl.Diagnostic) int {
		if d.Subject == nil {
			return -1
		}
		if i := slices.Index(s.order, d.Subject.Filename); i >= 0 {
			return i
		}
		return len(s.order)
	}
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		if c := cmp.Compare(fileIndex(a), fileIndex(b)); c != 0 {
			return c
		}
		if a.Subject == nil || b.Subject == nil {
			return 0
		}
		if c := cmp.Compare(a.Subject.Filename, b.Subject.Filename); c != 0 {
			return c
		}
		return cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte)
	})
	return diags
}
