// Package export_workflow_plugin_tool offers the SDK's tools.
package export_workflow_plugin_tool

import (
	"wit_component/sdkglue"
	"wit_component/workflow_plugin_tool"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Definitions() []workflow_plugin_tool.ToolDefinition {
	var out []workflow_plugin_tool.ToolDefinition
	for _, e := range plugin.Tools() {
		params, err := plugin.Encode(e.Parameters)
		if err != nil || e.Parameters == nil {
			params = `{"type":"object"}`
		}
		out = append(out, workflow_plugin_tool.ToolDefinition{Name: e.Name, Description: e.Description, Parameters: params})
	}
	return out
}

func Invoke(c workflow_plugin_types.CallContext, name string, arguments string) witTypes.Result[string, string] {
	ctx, err := sdkglue.Context(c)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	out, err := plugin.CallInvoke(ctx, name, arguments)
	if err != nil {
		return sdkglue.Fail[string](err)
	}
	return witTypes.Ok[string, string](out)
}
