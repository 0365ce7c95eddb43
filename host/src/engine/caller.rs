//! [`Caller`]: who starts, resumes or reads a run. It comes from the
//! operator (the command line; later a server's authentication), never from
//! the spec, which may be a tenant's.

use super::RunError;
use crate::store::{Scope, SessionScope};

/// Who a run is started or resumed for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The host's operator (the CLI without `--account`/`--user`, a library
    /// user): sees every account. A run it starts belongs to the account
    /// and user its session names (the spec's, or none), so an operator can
    /// run a spec that names a session of any account.
    #[default]
    Operator,
    /// A user of one account (the CLI's `--account`/`--user`; later an
    /// authenticated request). A run it starts is that account's and
    /// user's; a session that names another account or user is refused, so
    /// a spec cannot read another tenant's conversation history.
    Account { account_id: String, user_id: String },
}

impl Caller {
    pub fn account(account_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Caller::Account {
            account_id: account_id.into(),
            user_id: user_id.into(),
        }
    }

    /// What this caller may see in the store.
    pub fn scope(&self) -> Scope {
        match self {
            Caller::Operator => Scope::Operator,
            Caller::Account { account_id, .. } => Scope::Account(account_id.clone()),
        }
    }

    /// The account and user a new run of this caller belongs to, given the
    /// session it asks for. [`RunError::ForeignSession`] when an account's
    /// caller asks for a session of another account or user.
    pub fn owner_of(&self, session: Option<&SessionScope>) -> Result<(String, String), RunError> {
        match self {
            Caller::Operator => Ok(session
                .map(|s| (s.account_id.clone(), s.user_id.clone()))
                .unwrap_or_default()),
            Caller::Account {
                account_id,
                user_id,
            } => match session {
                Some(s) if (&s.account_id, &s.user_id) != (account_id, user_id) => {
                    Err(RunError::ForeignSession {
                        session: s.session_id.clone(),
                        account_id: s.account_id.clone(),
                        user_id: s.user_id.clone(),
                        caller_account: account_id.clone(),
                        caller_user: user_id.clone(),
                    })
                }
                _ => Ok((account_id.clone(), user_id.clone())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_cannot_name_another_accounts_session() {
        let caller = Caller::account("a", "u");
        let own = SessionScope::new("a", "u", "s");
        assert_eq!(
            caller.owner_of(Some(&own)).ok(),
            Some(("a".into(), "u".into()))
        );
        assert_eq!(caller.owner_of(None).ok(), Some(("a".into(), "u".into())));
        for foreign in [
            SessionScope::new("b", "u", "s"),
            SessionScope::new("a", "v", "s"),
        ] {
            let err = caller.owner_of(Some(&foreign)).expect_err("refused");
            assert!(matches!(err, RunError::ForeignSession { .. }), "{err}");
        }
        assert_eq!(caller.scope(), Scope::account("a"));
    }

    #[test]
    fn the_operator_runs_under_the_session_it_names() {
        let named = SessionScope::new("b", "v", "s");
        let owner = Caller::Operator.owner_of(Some(&named)).ok();
        assert_eq!(owner, Some(("b".into(), "v".into())));
        assert_eq!(
            Caller::Operator.owner_of(None).ok(),
            Some(Default::default())
        );
        assert_eq!(Caller::Operator.scope(), Scope::Operator);
    }
}
