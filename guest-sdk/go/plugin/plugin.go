// Package plugin writes workflow-host plugins in Go.
//
// Register each entry in an init function; the SDK answers describe,
// dispatches calls by entry name and converts JSON both ways, so an entry
// is an ordinary Go function of Go values:
//
//	package main
//
//	import (
//		"strings"
//		"workflow/plugin"
//	)
//
//	func init() {
//		plugin.Guard("shouty", "runs the step when the input is upper case",
//			func(ctx plugin.Context, input any, prior []plugin.StepResult) (bool, error) {
//				text := plugin.Text(input)
//				return text == strings.ToUpper(text), nil
//			})
//	}
//
// Do not write func main: the generated bindings have it. Build with
// guest-sdk/go/build.sh SRC_DIR OUT.wasm (or `host plugins build`).
// Payloads are what encoding/json decodes into `any`: nil, bool, float64,
// string, []any and map[string]any. A returned error fails the call with
// its text.
package plugin

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Kind is what an entry is.
type Kind uint8

// The kinds, in the WIT's order.
const (
	KindGuard Kind = iota
	KindInputMapper
	KindReducer
	KindTool
	KindGuardrail
)

var kindNames = [...]string{"guard", "input_mapper", "reducer", "tool", "guardrail"}

func (k Kind) String() string { return kindNames[k] }

// Context says where and why the host is calling.
type Context struct {
	RunID       string
	WorkflowKey string
	Stage       string
	Step        uint32
	// The entry being called (several entries may share a kind).
	Entry string
	// The per-use config object from the spec ({} when absent).
	Config map[string]any
}

// Decode unmarshals the config into v (a pointer to your own struct).
func (c Context) Decode(v any) error {
	raw, err := json.Marshal(c.Config)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		return fmt.Errorf("%s: invalid config: %w", c.Entry, err)
	}
	return nil
}

// Strings is config[key] as a list of strings: nil when absent, an error
// when it is not an array of strings.
func (c Context) Strings(key string) ([]string, error) {
	raw, ok := c.Config[key]
	if !ok || raw == nil {
		return nil, nil
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: config.%s must be an array of strings", c.Entry, key)
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%s: config.%s must be an array of strings", c.Entry, key)
		}
		out = append(out, s)
	}
	return out, nil
}

// StepResult is the outcome of a step that already ran.
type StepResult struct {
	StageName     string
	StepIndex     uint32
	AgentKey      string
	ParallelGroup *string
	BranchIndex   *uint32
	// True when the step's guard skipped it.
	Skipped bool
	Output  any
	// Why the step failed (a failed branch of a stage that continues).
	Error *string
}

// Phase is what a guardrail is checking.
type Phase uint8

// The phases, in the WIT's order.
const (
	PhaseInput Phase = iota
	PhaseOutput
	PhaseToolInput
	PhaseToolOutput
)

// Verdict is a guardrail's decision: Tripwire stops the step.
type Verdict struct {
	Tripwire bool
	Message  string
	Info     any
}

// Entry is one registered entry, as describe reports it.
type Entry struct {
	Name        string
	Kind        Kind
	Description string
	// Tools only: the JSON Schema of the arguments object.
	Parameters any

	guard     func(Context, any, []StepResult) (bool, error)
	mapInput  func(Context, any, []StepResult) (any, error)
	reduce    func(Context, []StepResult, []StepResult) (any, error)
	invoke    func(Context, map[string]any) (any, error)
	guardrail func(Context, Phase, any) (Verdict, error)
}

var entries []*Entry

func register(e *Entry) { entries = append(entries, e) }

// Guard registers a guard: true runs the step, false skips it.
func Guard(name, description string, f func(ctx Context, input any, prior []StepResult) (bool, error)) {
	register(&Entry{Name: name, Kind: KindGuard, Description: description, guard: f})
}

// InputMapper registers an input mapper: it returns the step's input.
func InputMapper(name, description string, f func(ctx Context, input any, prior []StepResult) (any, error)) {
	register(&Entry{Name: name, Kind: KindInputMapper, Description: description, mapInput: f})
}

// Reducer registers a reducer: it merges a parallel stage's branch
// results (in branch order) into the next stage's input.
func Reducer(name, description string, f func(ctx Context, outputs, prior []StepResult) (any, error)) {
	register(&Entry{Name: name, Kind: KindReducer, Description: description, reduce: f})
}

// Tool registers a tool the model may call; parameters is the JSON Schema
// of its arguments object.
func Tool(name, description string, parameters any, f func(ctx Context, arguments map[string]any) (any, error)) {
	register(&Entry{Name: name, Kind: KindTool, Description: description, Parameters: parameters, invoke: f})
}

// Guardrail registers a guardrail.
func Guardrail(name, description string, f func(ctx Context, phase Phase, payload any) (Verdict, error)) {
	register(&Entry{Name: name, Kind: KindGuardrail, Description: description, guardrail: f})
}

// Text is the text of a JSON value: a string as is, null as "", anything
// else as compact JSON.
func Text(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	default:
		raw, err := json.Marshal(t)
		if err != nil {
			return fmt.Sprint(t)
		}
		return string(raw)
	}
}

// Level is a log record's severity.
type Level uint8

// The levels, in the WIT's order.
const (
	Trace Level = iota
	Debug
	Info
	Warn
	Error
)

// LogSink is set by the generated plumbing to the host's log import.
var LogSink func(level Level, message, fields string)

// Log writes a record into the host's tracing output under the plugin's
// name; fields (may be nil) is encoded as a JSON object.
func Log(level Level, message string, fields map[string]any) {
	if LogSink == nil {
		return
	}
	text := ""
	if fields != nil {
		if raw, err := json.Marshal(fields); err == nil {
			text = string(raw)
		}
	}
	LogSink(level, message, text)
}

// ---- used by the generated export packages, not by plugin authors ----

// Entries is every registered entry, for describe.
func Entries() []*Entry { return entries }

// Tools is every registered tool entry, sorted by name.
func Tools() []*Entry {
	var out []*Entry
	for _, e := range entries {
		if e.Kind == KindTool {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func find(kind Kind, name string) (*Entry, error) {
	var only *Entry
	count := 0
	for _, e := range entries {
		if e.Kind != kind {
			continue
		}
		if e.Name == name {
			return e, nil
		}
		only = e
		count++
	}
	if count == 1 && name == "" {
		return only, nil
	}
	return nil, fmt.Errorf("this plugin offers no %s named `%s`", kind, name)
}

// Parse decodes JSON text from the host ("" is null).
func Parse(what, text string) (any, error) {
	if text == "" {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("host sent invalid JSON for %s: %w", what, err)
	}
	return v, nil
}

// Encode is v as JSON text.
func Encode(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("the result is not JSON: %w", err)
	}
	return string(raw), nil
}

// NewContext builds a Context from the host's fields.
func NewContext(runID, workflowKey, stage string, step uint32, entry, config string) (Context, error) {
	ctx := Context{RunID: runID, WorkflowKey: workflowKey, Stage: stage, Step: step, Entry: entry}
	v, err := Parse("config", config)
	if err != nil {
		return ctx, err
	}
	switch m := v.(type) {
	case nil:
		ctx.Config = map[string]any{}
	case map[string]any:
		ctx.Config = m
	default:
		return ctx, fmt.Errorf("%s: config must be a JSON object", entry)
	}
	return ctx, nil
}

// CallGuard runs the guard entry ctx.Entry.
func CallGuard(ctx Context, input string, prior []StepResult) (bool, error) {
	e, err := find(KindGuard, ctx.Entry)
	if err != nil {
		return false, err
	}
	v, err := Parse("input", input)
	if err != nil {
		return false, err
	}
	return e.guard(ctx, v, prior)
}

// CallMapInput runs the input-mapper entry ctx.Entry.
func CallMapInput(ctx Context, input string, prior []StepResult) (string, error) {
	e, err := find(KindInputMapper, ctx.Entry)
	if err != nil {
		return "", err
	}
	v, err := Parse("input", input)
	if err != nil {
		return "", err
	}
	out, err := e.mapInput(ctx, v, prior)
	if err != nil {
		return "", err
	}
	return Encode(out)
}

// CallReduce runs the reducer entry ctx.Entry.
func CallReduce(ctx Context, outputs, prior []StepResult) (string, error) {
	e, err := find(KindReducer, ctx.Entry)
	if err != nil {
		return "", err
	}
	out, err := e.reduce(ctx, outputs, prior)
	if err != nil {
		return "", err
	}
	return Encode(out)
}

// CallInvoke runs the tool `name`.
func CallInvoke(ctx Context, name, arguments string) (string, error) {
	e, err := find(KindTool, name)
	if err != nil {
		return "", err
	}
	v, err := Parse("arguments", arguments)
	if err != nil {
		return "", err
	}
	args, ok := v.(map[string]any)
	if !ok && v != nil {
		return "", fmt.Errorf("tool `%s`: arguments must be a JSON object", name)
	}
	out, err := e.invoke(ctx, args)
	if err != nil {
		return "", err
	}
	return Encode(out)
}

// CallGuardrail runs the guardrail entry ctx.Entry.
func CallGuardrail(ctx Context, phase Phase, payload string) (Verdict, string, error) {
	e, err := find(KindGuardrail, ctx.Entry)
	if err != nil {
		return Verdict{}, "", err
	}
	v, err := Parse("payload", payload)
	if err != nil {
		return Verdict{}, "", err
	}
	verdict, err := e.guardrail(ctx, phase, v)
	if err != nil {
		return Verdict{}, "", err
	}
	info, err := Encode(verdict.Info)
	return verdict, info, err
}
