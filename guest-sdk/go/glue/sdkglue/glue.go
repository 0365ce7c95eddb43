// Package sdkglue converts between the generated WIT types and the
// workflow/plugin SDK's Go types. Part of the SDK's build plumbing: plugin
// authors never import it.
package sdkglue

import (
	"wit_component/workflow_plugin_host"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func init() {
	plugin.LogSink = func(level plugin.Level, message, fields string) {
		workflow_plugin_host.Log(workflow_plugin_types.Level(level), message, fields)
	}
}

// Context converts a call context.
func Context(c workflow_plugin_types.CallContext) (plugin.Context, error) {
	return plugin.NewContext(c.RunId, c.WorkflowKey, c.Stage, c.Step, c.Entry, c.Config)
}

func option[T any](o witTypes.Option[T]) *T {
	if o.IsNone() {
		return nil
	}
	v := o.Some()
	return &v
}

// Results converts step results, parsing each output.
func Results(list []workflow_plugin_types.StepResult) ([]plugin.StepResult, error) {
	out := make([]plugin.StepResult, 0, len(list))
	for _, r := range list {
		output, err := plugin.Parse("a step output", r.Output)
		if err != nil {
			return nil, err
		}
		out = append(out, plugin.StepResult{
			StageName: r.StageName, StepIndex: r.StepIndex, AgentKey: r.AgentKey,
			ParallelGroup: option(r.ParallelGroup), BranchIndex: option(r.BranchIndex),
			Skipped: r.Skipped, Output: output, Error: option(r.Error),
		})
	}
	return out, nil
}

// Fail is an error as the WIT result's error case.
func Fail[T any](err error) witTypes.Result[T, string] {
	return witTypes.Err[T, string](err.Error())
}
