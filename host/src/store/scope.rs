//! [`Scope`]: whose runs, journals, approvals and outbox entries a store
//! query may see.

use std::fmt;

/// Whose data a query sees. Every query behind the library API that reads
/// runs, journals or the outbox by id or lists them takes one, so a server
/// can scope each endpoint by the caller's account; there is no default, so
/// a caller cannot forget to choose.
///
/// - [`Scope::Operator`] is the host's operator (the CLI): every account.
/// - [`Scope::Account`] is one tenant: a run of another account is reported
///   as absent (`None`, an empty journal, an empty listing), never as
///   "forbidden", so ids of other tenants' runs do not leak either.
///
/// Accounts are compared exactly; the empty string is the account of runs
/// started without one (the CLI without `--account`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The operator: every account's data.
    Operator,
    /// One account's data only.
    Account(String),
}

impl Scope {
    pub fn account(account_id: impl Into<String>) -> Self {
        Scope::Account(account_id.into())
    }

    /// Whether a row of `account_id` is visible in this scope.
    pub fn admits(&self, account_id: &str) -> bool {
        match self {
            Scope::Operator => true,
            Scope::Account(a) => a == account_id,
        }
    }

    /// The account a query must filter on; `None` for the operator.
    pub fn account_filter(&self) -> Option<&str> {
        match self {
            Scope::Operator => None,
            Scope::Account(a) => Some(a),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Operator => f.write_str("the operator (every account)"),
            Scope::Account(a) => write!(f, "account {a:?}"),
        }
    }
}
