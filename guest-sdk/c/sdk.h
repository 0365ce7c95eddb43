/* Write workflow-host plugins in C.
 *
 * List your entries with WP_PLUGIN(...) and write each as a plain C
 * function of parsed JSON values; the SDK (sdk.c) answers describe,
 * dispatches calls by entry name, parses what the host sends and encodes
 * what you return. You never see the generated WIT bindings.
 *
 *   #include "sdk.h"
 *
 *   static bool shouty(const wp_ctx *ctx, const wp_json *input, const wp_results *prior) {
 *       const char *text = wp_text(input);
 *       for (; *text; text++) if (*text >= 'a' && *text <= 'z') return false;
 *       return true;
 *   }
 *
 *   WP_PLUGIN(WP_GUARD("shouty", "runs the step when the input is upper case", shouty))
 *
 * Memory: every call runs in a fresh instance that is thrown away
 * afterwards, so values the SDK gives you and values you build are never
 * freed; nothing needs to be. Errors: call wp_fail("...", ...) and return
 * anything; the call then fails with that message.
 *
 * Build: guest-sdk/c/build.sh SRC_DIR OUT.wasm (or `host plugins build`).
 */
#ifndef WP_SDK_H
#define WP_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- JSON values ---- */

typedef enum { WP_NULL, WP_BOOL, WP_NUMBER, WP_STRING, WP_ARRAY, WP_OBJECT } wp_type;

typedef struct wp_json {
    wp_type type;
    bool boolean;
    double number;
    char *string;          /* WP_STRING: NUL-terminated, unescaped */
    size_t len;            /* string bytes, array items or object members */
    struct wp_json **items; /* WP_ARRAY items, WP_OBJECT values */
    char **keys;           /* WP_OBJECT keys */
} wp_json;

/* Parses JSON text; NULL (and wp_fail) when it is not JSON. */
wp_json *wp_parse(const char *text, size_t len);
/* Compact JSON text of a value (NULL is `null`). */
char *wp_stringify(const wp_json *value);

/* Reading. Every function accepts NULL and answers "absent". */
const wp_json *wp_get(const wp_json *object, const char *key); /* member or NULL */
const wp_json *wp_at(const wp_json *array, size_t index);       /* item or NULL */
size_t wp_len(const wp_json *value);        /* items of an array or object, else 0 */
const char *wp_str(const wp_json *value);   /* a string's text, else NULL */
double wp_num(const wp_json *value, double otherwise);
bool wp_bool(const wp_json *value, bool otherwise);
/* The text of a value: a string as is, null as "", anything else as JSON. */
const char *wp_text(const wp_json *value);
/* A lower-case (ASCII) copy. */
char *wp_lower(const char *text);

/* Building. */
wp_json *wp_null(void);
wp_json *wp_boolean(bool b);
wp_json *wp_number(double n);
wp_json *wp_string(const char *text);
wp_json *wp_array(void);
wp_json *wp_object(void);
wp_json *wp_push(wp_json *array, wp_json *item);                 /* returns array */
wp_json *wp_set(wp_json *object, const char *key, wp_json *value); /* returns object */

/* ---- what the host passes ---- */

typedef struct {
    const char *run_id;
    const char *workflow_key;
    const char *stage;
    uint32_t step;
    const char *entry;      /* the entry being called */
    const wp_json *config;  /* the spec's config object ({} when absent) */
} wp_ctx;

typedef struct {
    const char *stage_name;
    uint32_t step_index;
    const char *agent_key;
    const char *parallel_group; /* NULL outside a parallel stage */
    bool has_branch_index;
    uint32_t branch_index;
    bool skipped;               /* the step's guard skipped it */
    const wp_json *output;
    const char *error;          /* a failed branch's error, else NULL */
} wp_step;

typedef struct {
    size_t len;
    const wp_step *items;
} wp_results;

typedef enum { WP_PHASE_INPUT, WP_PHASE_OUTPUT, WP_PHASE_TOOL_INPUT, WP_PHASE_TOOL_OUTPUT } wp_phase;

typedef struct {
    bool tripwire;          /* true stops the step */
    const char *message;
    wp_json *info;
} wp_verdict;

/* Fails the current call with a message (printf format). */
void wp_fail(const char *format, ...) __attribute__((format(printf, 1, 2)));

typedef enum { WP_TRACE, WP_DEBUG, WP_INFO, WP_WARN, WP_ERROR } wp_level;
/* A record in the host's log under the plugin's name; fields may be NULL. */
void wp_log(wp_level level, const char *message, const wp_json *fields);

/* ---- entries ---- */

typedef enum { WP_KIND_GUARD, WP_KIND_INPUT_MAPPER, WP_KIND_REDUCER, WP_KIND_TOOL, WP_KIND_GUARDRAIL } wp_kind;

typedef struct {
    const char *name;
    wp_kind kind;
    const char *description;
    const char *parameters; /* tools: JSON Schema of the arguments */
    bool (*guard)(const wp_ctx *, const wp_json *input, const wp_results *prior);
    wp_json *(*map_input)(const wp_ctx *, const wp_json *input, const wp_results *prior);
    wp_json *(*reduce)(const wp_ctx *, const wp_results *outputs, const wp_results *prior);
    wp_json *(*invoke)(const wp_ctx *, const wp_json *arguments);
    wp_verdict (*guardrail)(const wp_ctx *, wp_phase phase, const wp_json *payload);
} wp_entry;

#define WP_GUARD(NAME, DESCRIPTION, FN) \
    {.name = NAME, .kind = WP_KIND_GUARD, .description = DESCRIPTION, .guard = FN}
#define WP_INPUT_MAPPER(NAME, DESCRIPTION, FN) \
    {.name = NAME, .kind = WP_KIND_INPUT_MAPPER, .description = DESCRIPTION, .map_input = FN}
#define WP_REDUCER(NAME, DESCRIPTION, FN) \
    {.name = NAME, .kind = WP_KIND_REDUCER, .description = DESCRIPTION, .reduce = FN}
#define WP_TOOL(NAME, DESCRIPTION, PARAMETERS, FN) \
    {.name = NAME, .kind = WP_KIND_TOOL, .description = DESCRIPTION, .parameters = PARAMETERS, .invoke = FN}
#define WP_GUARDRAIL(NAME, DESCRIPTION, FN) \
    {.name = NAME, .kind = WP_KIND_GUARDRAIL, .description = DESCRIPTION, .guardrail = FN}

/* The plugin's entries: WP_PLUGIN(WP_GUARD(...), WP_REDUCER(...)). Once per plugin. */
#define WP_PLUGIN(...)                                                        \
    const wp_entry wp_plugin_entries[] = {__VA_ARGS__};                        \
    const size_t wp_plugin_entry_count = sizeof(wp_plugin_entries) / sizeof(wp_entry);

extern const wp_entry wp_plugin_entries[];
extern const size_t wp_plugin_entry_count;

#endif
