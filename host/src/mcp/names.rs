//! Tool names the model API accepts (`^[A-Za-z0-9_-]{1,64}$`) for MCP tools,
//! whose own names may hold any character and be of any length.

use sha2::{Digest, Sha256};

/// The longest tool name OpenAI accepts.
const MAX: usize = 64;

/// `mcp__<server>__<tool>` with every other character turned into `_`; a
/// name too long keeps its start and ends in a hash of the whole, so two
/// long names stay apart.
pub(crate) fn fit(server: &str, tool: &str) -> String {
    let raw = format!("mcp__{server}__{tool}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= MAX && clean == raw {
        return clean;
    }
    // Sanitised or cut: a hash of the original keeps `a.b` and `a_b` apart.
    let hash = hex::encode(&Sha256::digest(raw.as_bytes())[..4]);
    let keep = clean.len().min(MAX - hash.len() - 1);
    format!("{}_{hash}", &clean[..keep])
}

#[cfg(test)]
mod tests {
    use super::fit;

    fn valid(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(fit("everything", "get-sum"), "mcp__everything__get-sum");
    }

    #[test]
    fn odd_and_long_names_fit_and_stay_apart() {
        let dotted = fit("s", "a.b");
        let under = fit("s", "a_b");
        assert!(valid(&dotted), "{dotted}");
        assert_ne!(dotted, under);
        let long = "x".repeat(200);
        let a = fit("server", &long);
        let b = fit("server", &format!("{long}y"));
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(valid(&fit("ünïcode", "tool/with spaces")));
    }
}
