package config

import (
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// evalContext is what expressions in handler blocks may use: string templates, lists and
// maps need nothing; these functions cover the usual needs of a job file. env reads the
// runner's environment, so a value that differs between nodes changes the job's Hash on
// those nodes: that is drift, and it is reported as such, not hidden.
func evalContext(lookupEnv func(string) (string, bool)) *hcl.EvalContext {
	env := function.New(&function.Spec{
		Description: "The value of an environment variable of the runner, or an error if it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v, ok := lookupEnv(name)
			if !ok {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not set", name)
			}
			return cty.StringVal(v), nil
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":        env,
		"jsonencode": stdlib.JSONEncodeFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"lower":      stdlib.LowerFunc,
		"upper":      stdlib.UpperFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"concat":     stdlib.ConcatFunc,
		"merge":      stdlib.MergeFunc,
		"tostring":   stdlib.MakeToFunc(cty.String),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
	}}
}

// processEnv is the environment evalContext reads by default.
func processEnv(name string) (string, bool) { return os.LookupEnv(name) }
