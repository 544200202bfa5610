//! Authorization: one table from full method name (the gRPC path, which the
//! HTTP/JSON routes share) to the roles allowed to call it. A method not in
//! the table is denied. The provd.v1 rows come from the one RPC table
//! (`rpc.rs`). Roles come from the client certificate (see
//! `deploy/pki/README.md`).

use crate::pki::Role;

const VIEW: &[Role] = &[Role::Viewer, Role::Operator, Role::Admin];
const OPERATE: &[Role] = &[Role::Operator, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];

/// Expands the RPC table into `(path, roles)` pairs, then the standard
/// services and probes.
macro_rules! role_table {
    (() $($service:ident $api:ident {
        $($kind:ident $method:ident $handler:ident $request:ty, $roles:ident;)*
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
    fn table_has_no_duplicates() {
        let mut paths: Vec<_> = TABLE.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len());
    }
}
