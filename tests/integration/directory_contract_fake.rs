//! The directory contract (`provd::testkit::contract`) on `FakeDirectory`:
//! no root, no lab. The same suite runs on the Samba lab in
//! `directory_contract_lab.rs`.

use std::sync::Arc;

use provd::backends::directory::{BindCredential, BindSecret, KerberosSource};
use provd::testkit::FakeDirectory;
use provd::testkit::contract::{self, ContractEnv};

fn env() -> ContractEnv {
    let fake = FakeDirectory::new();
    let host = format!("HOST1$@{}", fake.domain().to_ascii_uppercase());
    let keytab = KerberosSource::Keytab("/etc/krb5.keytab".into());
    fake.set_kerberos(&host, keytab.clone());
    ContractEnv {
        directory: Arc::new(fake.clone()),
        domain: fake.domain(),
        dcs: fake.dcs(),
        credential: fake.admin_credential(),
        base_dn: fake.base_dn(),
        domain_sid: fake.domain_sid().to_string(),
        unreachable_dc: "127.0.0.9".into(),
        kerberos: BindCredential {
            username: host,
            secret: BindSecret::Kerberos(keytab),
        },
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
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

#[tokio::test]
async fn run_all_on_one_fake() {
    contract::run_all(&env()).await;
}
