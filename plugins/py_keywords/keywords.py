from plugin_sdk import guard, text


@guard("py_keywords", "runs the step on a keyword")
def check(ctx, input, prior):
    haystack = text(input).lower()
    return any(str(k).lower() in haystack for k in ctx.config.get("keywords", []))
