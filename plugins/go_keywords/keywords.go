package main

import "slices"
import "strings"
import "workflow/plugin"

func init() {
	plugin.Guard("go_keywords", "runs the step on a keyword",
		func(ctx plugin.Context, input any, _ []plugin.StepResult) (bool, error) {
			text := strings.ToLower(plugin.Text(input))
			keywords, err := ctx.Strings("keywords")
			return slices.ContainsFunc(keywords, func(k string) bool {
				return strings.Contains(text, strings.ToLower(k))
			}), err
		})
}
