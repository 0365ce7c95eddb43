// Package export_workflow_plugin_reducer calls the SDK's reducers.
package export_workflow_plugin_reducer

import (
	"wit_component/sdkglue"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Reduce(c workflow_plugin_types.CallContext, outputs, prior []workflow_plugin_types.StepResult) witTypes.Result[string, string] {
	ctx, err := sdkglue.Context(c)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	branches, err := sdkglue.Results(outputs)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	earlier, err := sdkglue.Results(prior)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	out, err := plugin.CallReduce(ctx, branches, earlier)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	return witTypes.Ok[string, string](out)
}
