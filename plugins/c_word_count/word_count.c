/* c_word_count — a reducer written in C with guest-sdk/c.
 *
 * Counts the words of every branch output of a parallel stage:
 *   {"total": 12, "branches": {"writer": 9, "critic": 3}, "longest": "writer"}
 * Skipped and failed branches are left out. A branch output that is not a
 * string is counted as its compact JSON. Config `min_words` (a number,
 * default 0): fail the stage when the total is lower. */
#include "sdk.h"

#include <ctype.h>

static double words(const char *text) {
    double n = 0;
    bool in_word = false;
    for (; *text; text++) {
        bool space = isspace((unsigned char)*text);
        if (!space && !in_word) n++;
        in_word = !space;
    }
    return n;
}

static wp_json *reduce(const wp_ctx *ctx, const wp_results *outputs, const wp_results *prior) {
    const wp_json *min = wp_get(ctx->config, "min_words");
    if (min && wp_num(min, -1) < 0) {
        wp_fail("c_word_count: config.min_words must be a non-negative number");
        return NULL;
    }
    wp_json *branches = wp_object();
    double total = 0, most = -1;
    const char *longest = NULL;
    for (size_t i = 0; i < outputs->len; i++) {
        const wp_step *step = &outputs->items[i];
        if (step->skipped || step->error) continue;
        double n = words(wp_text(step->output));
        wp_set(branches, step->agent_key, wp_number(n));
        total += n;
        if (n > most) { most = n; longest = step->agent_key; }
    }
    if (total < wp_num(min, 0)) {
        wp_fail("c_word_count: %.0f words, fewer than min_words %.0f", total, wp_num(min, 0));
        return NULL;
    }
    wp_log(WP_DEBUG, "c_word_count: counted", branches);
    wp_json *out = wp_set(wp_object(), "total", wp_number(total));
    wp_set(out, "branches", branches);
    return wp_set(out, "longest", longest ? wp_string(longest) : wp_null());
}

WP_PLUGIN(WP_REDUCER("c_word_count", "counts the words of each branch output (C)", reduce))
