package config

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// pieceSize is how many bytes of a file, at least, are parsed together: enough jobs that
// handing pieces out costs nothing next to parsing them, few enough that the syntax trees
// in flight stay small and a large file keeps every CPU busy.
const pieceSize = 64 << 10

// A large job file is parsed in pieces, each ending with a top-level block, and each piece
// is decoded as soon as it is parsed. Only the decoded jobs and an index of the top-level
// blocks (for the "in job ..." of rendered diagnostics) outlive a piece: a syntax tree is
// many times the size of its source, and a whole file's would be most of the memory a load
// needs. The pieces are parsed and decoded in parallel, and merged in file order.
//
// A file is cut after lines that hold a lone "}", which in a file formatted the usual way
// close a top-level block. A cut elsewhere (inside a heredoc, a comment or a nested block)
// leaves an unterminated construct at the end of its piece, which does not parse. So the
// pieces are used only if every one of them parses and matches the file schema without a
// single diagnostic; otherwise the file is parsed again in one piece, and whatever it
// reports is exactly what it always did.

// piece is a part of a file: its bytes and where they start.
type piece struct {
	src   []byte
	start hcl.Pos
}

// cut splits src into pieces of at least size bytes where it can, each ending after a line
// that is a lone "}".
func cut(src []byte, size int) []piece {
	var out []piece
	pos := hcl.InitialPos
	for len(src) > 0 {
		n := len(src)
		if n/2 > size {
			if end := blockEnd(src, size); end > 0 {
				n = end
			}
		}
		out = append(out, piece{src: src[:n], start: pos})
		pos.Byte += n
		pos.Line += bytes.Count(src[:n], []byte{'\n'})
		src = src[n:]
	}
	return out
}

// blockEnd returns the offset just after the first line at or after from that is a lone
// "}" (with "\n" or "\r\n"), or 0 if there is none.
func blockEnd(src []byte, from int) int {
	for {
		i := bytes.Index(src[from:], []byte("\n}"))
		if i < 0 {
			return 0
		}
		end := from + i + 2
		switch {
		case bytes.HasPrefix(src[end:], []byte("\n")):
			return end + 1
		case bytes.HasPrefix(src[end:], []byte("\r\n")):
			return end + 2
		}
		from = end
	}
}

// mayHoldHugeNumber reports whether src may hold a number literal that checkNumbers
// rejects, so that the walk over the syntax tree is left out for the pieces that cannot.
// A literal without a run of a hundred digits or more and without an exponent of three
// digits or more lies well within the float64 range; anywhere such runs appear, in a
// literal, a string or a comment, the walk is made.
func mayHoldHugeNumber(src []byte) bool {
	run := 0
	for i, c := range src {
		if c < '0' || c > '9' {
			run = 0
			if (c == 'e' || c == 'E') && exponentDigits(src[i+1:]) >= 3 {
				return true
			}
			continue
		}
		if run++; run >= 100 {
			return true
		}
	}
	return false
}

// exponentDigits counts the digits at the start of b, after an optional sign.
func exponentDigits(b []byte) int {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		b = b[1:]
	}
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

// decoded is what a piece leaves behind.
type decoded struct {
	items  []item
	blocks navigation
}

// pieces parses and decodes the pieces of the file name, in parallel. It reports false if
// a piece did not parse cleanly on its own.
func (dec *decoder) pieces(name string, ps []piece) ([]item, navigation, bool) {
	out := make([]decoded, len(ps))
	var failed atomic.Bool
	parallel(len(ps), func(i int) {
		if failed.Load() {
			return
		}
		d, ok := dec.piece(name, ps[i])
		if !ok {
			failed.Store(true)
			return
		}
		out[i] = d
	})
	if failed.Load() {
		return nil, nil, false
	}
	var n, m int
	for _, d := range out {
		n, m = n+len(d.items), m+len(d.blocks)
	}
	items, blocks := make([]item, 0, n), make(navigation, 0, m)
	for _, d := range out {
		items, blocks = append(items, d.items...), append(blocks, d.blocks...)
	}
	return items, blocks, true
}

// piece parses and decodes one piece, unless it has any diagnostic of its own.
func (dec *decoder) piece(name string, p piece) (decoded, bool) {
	f, diags := hclsyntax.ParseConfig(p.src, name, p.start)
	if len(diags) > 0 {
		return decoded{}, false
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok || mayHoldHugeNumber(p.src) && len(checkNumbers(body)) > 0 {
		return decoded{}, false
	}
	content, diags := body.Content(fileSchema())
	if len(diags) > 0 || len(content.Blocks) != len(body.Blocks) {
		return decoded{}, false
	}
	d := decoded{items: make([]item, len(content.Blocks)), blocks: make(navigation, len(body.Blocks))}
	for i, b := range body.Blocks {
		r := b.Range()
		d.blocks[i] = navBlock{start: r.Start.Byte, end: r.End.Byte, typ: b.Type, labels: b.Labels}
	}
	for i, b := range content.Blocks {
		d.items[i] = dec.block(b)
	}
	return d, true
}

// navigation stands in for the syntax tree of a file parsed in pieces where HCL's
// diagnostic writer looks for the block a diagnostic is in: its top-level blocks, in file
// order.
type navigation []navBlock

type navBlock struct {
	start, end int // byte offsets: the block's range
	typ        string
	labels     []string
}

// ContextString names the top-level block that holds offset, as hclsyntax's own
// navigation does: its type and quoted labels.
func (n navigation) ContextString(offset int) string {
	i, _ := slices.BinarySearchFunc(n, offset, func(b navBlock, off int) int {
		if b.end <= off {
			return -1
		}
		return 1
	})
	if i == len(n) || offset < n[i].start {
		return ""
	}
	b := n[i]
	if len(b.labels) == 0 {
		return b.typ
	}
	var sb strings.Builder
	sb.WriteString(b.typ)
	for _, l := range b.labels {
		fmt.Fprintf(&sb, " %q", l)
	}
	return sb.String()
}
