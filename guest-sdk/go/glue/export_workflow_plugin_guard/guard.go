// Package export_workflow_plugin_guard calls the SDK's guard entries.
package export_workflow_plugin_guard

import (
	"wit_component/sdkglue"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Check(c workflow_plugin_types.CallContext, input string, prior []workflow_plugin_types.StepResult) witTypes.Result[bool, string] {
	ctx, err := sdkglue.Context(c)
	if err != nil {
		return sdkglue.Fail[bool](err)
	}
	results, err := sdkglue.Results(prior)
	if err != nil {
		return sdkglue.Fail[bool](err)
	}
	run, err := plugin.CallGuard(ctx, input, results)
	if err != nil {
		return sdkglue.Fail[bool](err)
	}
	return witTypes.Ok[bool, string](run)
}
