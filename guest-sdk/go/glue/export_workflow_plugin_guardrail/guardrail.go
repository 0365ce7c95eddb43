// Package export_workflow_plugin_guardrail calls the SDK's guardrails.
package export_workflow_plugin_guardrail

import (
	"wit_component/sdkglue"
	"wit_component/workflow_plugin_guardrail"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Check(c workflow_plugin_types.CallContext, phase uint8, payload string) witTypes.Result[workflow_plugin_guardrail.Verdict, string] {
	ctx, err := sdkglue.Context(c)
	if err != nil {
		return sdkglue.Fail[workflow_plugin_guardrail.Verdict](err)
	}
	v, info, err := plugin.CallGuardrail(ctx, plugin.Phase(phase), payload)
	if err != nil {
		return sdkglue.Fail[workflow_plugin_guardrail.Verdict](err)
	}
	return witTypes.Ok[workflow_plugin_guardrail.Verdict, string](workflow_plugin_guardrail.Verdict{Tripwire: v.Tripwire, Message: v.Message, Info: info})
}
