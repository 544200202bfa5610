//! Authorization: one table from full method name (the gRPC path, which the
//! HTTP/JSON routes share) to the roles allowed to call it. A method not in
//! the table is denied. The provd.v1 rows come from the one RPC table
//! (`rpc.rs`), as does which methods change something ([`is_mutating`]:
//! the calls the audit trail records whatever their outcome). Roles come
//! from the client certificate (see `deploy/pki/README.md`).

use crate::pki::Role;

const VIEW: &[Role] = &[Role::Viewer, Role::Operator, Role::Admin];
const OPERATE: &[Role] = &[Role::Operator, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];

/// Expands the RPC table into `(path, roles)` pairs, then the standard
/// services and probes.
macro_rules! role_table {
    (() $($service:ident $api:ident {
        $($kind:ident $method:ident $handler:ident $request:ty, $roles:ident, $effect:ident;)*
    })*) => {
        &[
            $($((concat!("/provd.v1.", stringify!($service), "/", stringify!($method)), $roles),)*)*
            ("/grpc.health.v1.Health/Check", VIEW),
            ("/grpc.health.v1.Health/Watch", VIEW),
            ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", VIEW),
            // HTTP probes: any authenticated client.
            ("/healthz", VIEW),
            ("/readyz", VIEW),
        ]
    };
}

/// Every callable path and who may call it.
pub const TABLE: &[(&str, &[Role])] = super::rpc::rpc_table!(role_table!());

/// Whether a method changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
}

macro_rules! effect {
    (read) => {
        Effect::Read
    };
    (write) => {
        Effect::Write
    };
}

/// Expands the RPC table into `(path, effect)` pairs.
macro_rules! effect_table {
    (() $($service:ident $api:ident {
        $($kind:ident $method:ident $handler:ident $request:ty, $roles:ident, $effect:ident;)*
    })*) => {
        &[
            $($((concat!("/provd.v1.", stringify!($service), "/", stringify!($method)), effect!($effect)),)*)*
        ]
    };
}

/// Every provd.v1 method and whether it changes anything (health,
/// reflection and the probes read).
pub const EFFECTS: &[(&str, Effect)] = super::rpc::rpc_table!(effect_table!());

/// True for a method that changes something: every call of it is audited.
pub fn is_mutating(path: &str) -> bool {
    EFFECTS
        .iter()
        .any(|(method, effect)| *method == path && *effect == Effect::Write)
}

/// Roles allowed to call `path`, or `None` if the path is not in the table.
pub fn allowed_roles(path: &str) -> Option<&'static [Role]> {
    TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, roles)| *roles)
}

/// `path` as the table spells it (a `'static` name for spans and metric
/// labels), or `None` for a path nobody may call.
pub fn method_name(path: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(method, _)| *method)
}

/// True if any of `roles` may call `path`. Default deny.
pub fn is_allowed(path: &str, roles: &[Role]) -> bool {
    allowed_roles(path).is_some_and(|allowed| roles.iter().any(|r| allowed.contains(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_and_roleless_are_denied() {
        assert!(!is_allowed("/provd.v1.AgentService/Nope", &Role::ALL));
        assert!(!is_allowed("/provd.v1.AgentService/GetAgent", &[]));
        assert!(is_allowed(
            "/provd.v1.AgentService/GetAgent",
            &[Role::Viewer]
        ));
        assert!(!is_allowed(
            "/provd.v1.AgentService/Install",
            &[Role::Operator]
        ));
    }

    #[test]
    fn viewers_change_nothing_and_every_method_has_an_effect() {
        for (path, roles) in TABLE {
            if roles.contains(&Role::Viewer) {
                assert!(!is_mutating(path), "{path} is open to viewers and writes");
            }
        }
        assert_eq!(
            EFFECTS.len(),
            TABLE
                .iter()
                .filter(|(p, _)| p.starts_with("/provd.v1."))
                .count()
        );
        assert!(is_mutating("/provd.v1.AgentService/Install"));
        assert!(is_mutating("/provd.v1.OperationsService/CancelOperation"));
        assert!(!is_mutating("/provd.v1.AgentService/GetAgent"));
        assert!(!is_mutating("/healthz"));
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut paths: Vec<_> = TABLE.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len());
    }
}
