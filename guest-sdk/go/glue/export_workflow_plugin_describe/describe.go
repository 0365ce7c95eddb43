// Package export_workflow_plugin_describe answers describe from the
// entries registered with the workflow/plugin SDK.
package export_workflow_plugin_describe

import (
	_ "wit_component/sdkglue"
	"wit_component/workflow_plugin_types"
	"workflow/plugin"
)

func Describe() []workflow_plugin_types.Entry {
	var out []workflow_plugin_types.Entry
	for _, e := range plugin.Entries() {
		out = append(out, workflow_plugin_types.Entry{Name: e.Name, Kind: workflow_plugin_types.Kind(e.Kind), Description: e.Description})
	}
	return out
}
