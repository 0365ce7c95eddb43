//! Spec errors, each at a JSONPath (`$.agents.planner.tools[1]`).

use std::cmp::Ordering;

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error: {path}: {message}{}", hint_line(.hint))]
pub struct SpecError {
    /// JSONPath of the offending value, e.g. `$.workflow.stages[1].mode`.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

fn hint_line(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("\n  hint: {h}"),
        None => String::new(),
    }
}

impl SpecError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// Every problem found in a spec, sorted by path (array indices in numeric
/// order). Display prints one `error: $.path: message` line per problem,
/// each followed by an indented `hint: ...` line when there is a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.errors))]
pub struct SpecErrors {
    errors: Vec<SpecError>,
}

fn render(errors: &[SpecError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl SpecErrors {
    /// Sorts `errors` by path, keeping the order of errors at one path.
    pub fn new(mut errors: Vec<SpecError>) -> Self {
        errors.sort_by(|a, b| compare_paths(&a.path, &b.path));
        errors.dedup();
        SpecErrors { errors }
    }

    pub fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecErrors::new(vec![SpecError::new(path, message)])
    }

    pub fn errors(&self) -> &[SpecError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<SpecError> {
        self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when there are no errors.
    pub(crate) fn into_result(errors: Vec<SpecError>) -> Result<(), SpecErrors> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors::new(errors))
        }
    }
}

impl IntoIterator for SpecErrors {
    type Item = SpecError;
    type IntoIter = std::vec::IntoIter<SpecError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// `base.key`, or `base['key']` when the key is not a plain identifier.
pub(crate) fn key(base: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{base}.{key}")
    } else {
        let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{base}['{escaped}']")
    }
}

/// `base[i]`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Index(u64),
    Key(String),
}

fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut chars = path.strip_prefix('$').unwrap_or(path).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut k = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    k.push(n);
                    chars.next();
                }
                out.push(Segment::Key(k));
            }
            '[' if chars.peek() == Some(&'\'') => {
                chars.next();
                let mut k = String::new();
                while let Some(n) = chars.next() {
                    match n {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                k.push(e);
                            }
                        }
                        '\'' => break,
                        _ => k.push(n),
                    }
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                out.push(Segment::Key(k));
            }
            '[' => {
                let mut digits = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    digits.push(n);
                }
                match digits.parse() {
                    Ok(i) => out.push(Segment::Index(i)),
                    Err(_) => out.push(Segment::Key(digits)),
                }
            }
            other => out.push(Segment::Key(other.to_string())),
        }
    }
    out
}

/// Orders JSONPaths segment by segment, indices numerically.
pub(crate) fn compare_paths(a: &str, b: &str) -> Ordering {
    segments(a).cmp(&segments(b))
}

/// Edit distance in characters, a swap of two neighbours counting as one
/// edit (optimal string alignment).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known name closest to `name`, if it is close enough to be a typo
/// (or `name` is the start of it, like `timeout` for `timeout_ms`).
pub(crate) fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len / 3).max(1);
    known
        .into_iter()
        .filter(|k| *k != name)
        .filter_map(|k| {
            let d = edit_distance(name, k);
            if d <= limit && d < len.max(k.chars().count()) {
                Some((d, k))
            } else if len >= 3 && k.starts_with(name) {
                Some((limit + 1, k))
            } else {
                None
            }
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// "did you mean `x`?", else a list of the known names (`what`: "agents").
pub(crate) fn suggestion<'a>(
    name: &str,
    known: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> Option<String> {
    if let Some(best) = nearest(name, known.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let all: Vec<String> = known.into_iter().map(|k| format!("`{k}`")).collect();
    match all.len() {
        0 => None,
        n if n <= 12 => Some(format!("known {what}: {}", all.join(", "))),
        n => Some(format!(
            "known {what}: {}, ... ({n} in all)",
            all[..12].join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sort_by_segment() {
        let mut paths = vec![
            "$.workflow.stages[10].name",
            "$.workflow.stages[2].name",
            "$.agents['a b'].model",
            "$.agents.planner",
            "$",
        ];
        paths.sort_by(|a, b| compare_paths(a, b));
        assert_eq!(
            paths,
            [
                "$",
                "$.agents['a b'].model",
                "$.agents.planner",
                "$.workflow.stages[2].name",
                "$.workflow.stages[10].name",
            ]
        );
        assert_eq!(key("$.agents", "planner"), "$.agents.planner");
        assert_eq!(key("$.agents", "a-b"), "$.agents['a-b']");
        assert_eq!(key("$.agents", "it's"), "$.agents['it\\'s']");
    }

    #[test]
    fn nearest_names() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("modle", "model"), 1);
        assert_eq!(
            nearest("timeout", ["timeout_ms", "retry"]),
            Some("timeout_ms")
        );
        assert_eq!(nearest("mul", ["add", "sub"]), None);
        let known = ["planner", "writer", "researcher"];
        assert_eq!(nearest("planer", known), Some("planner"));
        assert_eq!(nearest("xyz", known), None);
        assert_eq!(
            suggestion("wrtier", known, "agents").as_deref(),
            Some("did you mean `writer`?")
        );
        assert_eq!(
            suggestion("zzz", ["a", "b"], "agents").as_deref(),
            Some("known agents: `a`, `b`")
        );
    }

    #[test]
    fn display_has_hint_lines() {
        let errors = SpecErrors::new(vec![
            SpecError::new("$.b", "second").with_hint(Some("fix b".into())),
            SpecError::new("$.a", "first"),
        ]);
        assert_eq!(
            errors.to_string(),
            "error: $.a: first\nerror: $.b: second\n  hint: fix b"
        );
    }
}
