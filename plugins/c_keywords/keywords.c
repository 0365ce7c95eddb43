#include "sdk.h"
#include <string.h>

static bool check(const wp_ctx *ctx, const wp_json *input, const wp_results *prior) {
    const wp_json *keywords = wp_get(ctx->config, "keywords");
    char *text = wp_lower(wp_text(input));
    for (size_t i = 0; i < wp_len(keywords); i++) {
        const char *keyword = wp_str(wp_at(keywords, i));
        if (keyword && strstr(text, wp_lower(keyword))) return true;
    }
    return false;
}

WP_PLUGIN(WP_GUARD("c_keywords", "runs the step on a keyword", check))
