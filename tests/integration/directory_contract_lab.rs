//! The directory contract (`provd::testkit::contract`) on `LdapDirectory`,
//! built as `provd::Daemon` builds it, against the Samba AD lab
//! (`deploy/lab/lab.sh`; root). Run with `-- --ignored`; the fake runs the
//! same suite in `directory_contract_fake.rs`.

use std::sync::Arc;

use crate::common::fixtures::backend;
use crate::common::lab::var;
use provd::backends::directory::{BindCredential, BindSecret, KerberosSource};
use provd::testkit::contract::{self, ContractEnv};

fn env() -> ContractEnv {
    ContractEnv {
        directory: Arc::new(backend()),
        domain: var("LAB_DOMAIN"),
        dcs: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
        credential: BindCredential::simple(var("LAB_ADMIN_UPN"), var("LAB_PASSWORD")),
        base_dn: var("LAB_BASE_DN"),
        domain_sid: var("LAB_DOMAIN_SID"),
        unreachable_dc: "127.0.0.9".into(),
        kerberos: BindCredential {
            username: format!("{}@{}", var("LAB_HOST_ACCOUNT"), var("LAB_REALM")),
            secret: BindSecret::Kerberos(KerberosSource::Keytab(var("LAB_HOST_KEYTAB").into())),
        },
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        #[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
        async fn $name() {
            contract::$name(&env()).await;
        }
    )*};
}

contract!(
    connect_and_root_dse,
    bad_password_is_invalid_credentials,
    searches_the_workflows_use,
    add_search_modify_delete_roundtrip,
    missing_objects_are_no_such_object,
    a_managed_password_is_withheld_from_a_non_principal,
    a_kerberos_credential_binds_and_missing_keys_are_named,
    a_malformed_base_dn_is_rejected,
    dacl_write_reads_back_byte_equal,
    srv_lookup_lists_the_dcs,
    probe_of_a_live_dc,
    unreachable_dc,
);
