// Package export_workflow_plugin_input_mapper calls the SDK's input mappers.
package export_workflow_plugin_input_mapper

import (
	"wit_component/sdkglue"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func MapInput(c workflow_plugin_types.CallContext, input string, prior []workflow_plugin_types.StepResult) witTypes.Result[string, string] {
	ctx, err := sdkglue.Context(c)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	results, err := sdkglue.Results(prior)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	out, err := plugin.CallMapInput(ctx, input, results)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	return witTypes.Ok[string, string](out)
}
