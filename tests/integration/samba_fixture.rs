//! Captures what a fresh Samba AD domain holds that provd's workflows read
//! into `tests/data/samba-lab-domain.json`, the seed of the testkit's
//! `FakeDirectory`, so the fake cannot drift from a real DC.
//!
//! `PROVD_WRITE_FIXTURE=1 cargo test -p provd --test integration samba_fixture -- --ignored`
//! rewrites the file from the running lab (`deploy/lab/lab.sh up`, root);
//! without the variable the test checks the file still matches the lab.
//! ACEs naming objects that tests create (domain RIDs of 1000 and up) are
//! dropped, so a lab that earlier tests used still gives a fresh domain.

use std::collections::BTreeMap;

use crate::common::fixtures::*;
use crate::common::lab::var;
use provd::backends::directory::{DirectorySession, Entry, Scope};
use provd_sd::{SecurityDescriptor, Sid};
use serde_json::{Value, json};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/samba-lab-domain.json"
);

fn to_json(e: &Entry, domain_sid: &Sid) -> Value {
    let mut bin = serde_json::Map::new();
    for (k, vs) in &e.bin_attrs {
        let vs: Vec<Value> = vs
            .iter()
            .map(|v| {
                let v = if k == "ntsecuritydescriptor" {
                    scrub_sd(v, domain_sid)
                } else {
                    v.clone()
                };
                Value::String(hex::encode(v))
            })
            .collect();
        bin.insert(k.clone(), Value::Array(vs));
    }
    json!({ "dn": e.dn, "attrs": e.attrs, "bin": bin })
}

/// Drops ACEs whose trustee is an object tests made (domain RID >= 1000).
fn scrub_sd(bytes: &[u8], domain_sid: &Sid) -> Vec<u8> {
    let Ok(mut sd) = SecurityDescriptor::parse(bytes) else {
        return bytes.to_vec();
    };
    let Some(mut dacl) = sd.dacl.clone() else {
        return bytes.to_vec();
    };
    let before = dacl.aces.len();
    dacl.aces.retain(|a| {
        a.sid()
            .and_then(|s| s.rid_in(domain_sid))
            .is_none_or(|rid| rid < 1000)
    });
    if dacl.aces.len() == before {
        return bytes.to_vec();
    }
    sd.set_dacl(Some(dacl));
    sd.to_bytes().unwrap_or_else(|_| bytes.to_vec())
}

async fn one(s: &mut dyn DirectorySession, dn: &str, attrs: &[&str]) -> Option<Entry> {
    s.search(dn, Scope::Base, "(objectClass=*)", attrs)
        .await
        .ok()
        .and_then(|v| v.into_iter().next())
}

async fn capture() -> Value {
    let base = base();
    let config = config_dn();
    let schema = format!("CN=Schema,{config}");
    let domain_sid: Sid = var("LAB_DOMAIN_SID").parse().unwrap();
    let full = ["*", "nTSecurityDescriptor"];
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    let mut rootdse = serde_json::Map::new();
    let backend = backend();
    for host in [var("LAB_DC1_HOST"), var("LAB_DC2_HOST")] {
        use provd::backends::directory::{BindCredential, Directory};
        let cred = BindCredential::simple(var("LAB_ADMIN_UPN"), var("LAB_PASSWORD"));
        let mut s = backend.connect(&host, &cred).await.unwrap();
        let root = s.root_dse().await.unwrap();
        rootdse.insert(host.clone(), to_json(&root, &domain_sid));
        s.unbind().await;
    }
    let mut s = admin_session().await;
    let s = s.as_mut();
    let mut put = |e: Entry| {
        entries.insert(e.dn.to_ascii_lowercase(), to_json(&e, &domain_sid));
    };
    // Fixed objects of every fresh domain.
    let fixed = [
        base.clone(),
        format!("CN=Users,{base}"),
        format!("CN=Computers,{base}"),
        format!("OU=Domain Controllers,{base}"),
        format!("CN=Managed Service Accounts,{base}"),
        format!("CN=Builtin,{base}"),
        format!("CN=System,{base}"),
        format!("CN=Administrator,CN=Users,{base}"),
        format!("CN=Guest,CN=Users,{base}"),
        config.clone(),
        format!("CN=Partitions,{config}"),
        format!("CN=Services,{config}"),
        format!("CN=Extended-Rights,{config}"),
        format!("CN=Sites,{config}"),
        schema.clone(),
    ];
    for dn in &fixed {
        put(one(s, dn, &full).await.unwrap_or_else(|| panic!("{dn}")));
    }
    // Well-known groups (RID < 1000) in CN=Users and CN=Builtin.
    for (container, filter) in [
        (format!("CN=Users,{base}"), "(objectClass=group)"),
        (format!("CN=Builtin,{base}"), "(objectClass=group)"),
        (
            format!("OU=Domain Controllers,{base}"),
            "(objectClass=computer)",
        ),
        (format!("CN=Partitions,{config}"), "(objectClass=crossRef)"),
    ] {
        for e in s
            .search(&container, Scope::OneLevel, filter, &full)
            .await
            .unwrap()
        {
            let sid = e
                .first_bin("objectSid")
                .and_then(|b| Sid::from_bytes(b).ok());
            let made_by_tests = sid
                .and_then(|s| s.rid_in(&domain_sid))
                .is_some_and(|rid| rid >= 1000)
                && !e.all("objectClass").iter().any(|c| c == "computer")
                || e.first("cn").is_some_and(|cn| cn.starts_with("AGENT"));
            if !made_by_tests {
                put(e);
            }
        }
    }
    // Sites, servers and their nTDSDSA objects.
    for e in s
        .search(
            &format!("CN=Sites,{config}"),
            Scope::Subtree,
            "(|(objectClass=site)(objectClass=serversContainer)(objectClass=server)(objectClass=nTDSDSA))",
            &["*"],
        )
        .await
        .unwrap()
    {
        put(e);
    }
    // The whole schema (names and GUIDs only) and every extended right.
    for e in s
        .search(
            &schema,
            Scope::OneLevel,
            "(|(objectClass=classSchema)(objectClass=attributeSchema))",
            &[
                "objectClass",
                "cn",
                "lDAPDisplayName",
                "schemaIDGUID",
                "defaultObjectCategory",
                "objectCategory",
                "governsID",
                "attributeID",
                "subClassOf",
            ],
        )
        .await
        .unwrap()
    {
        put(e);
    }
    for e in s
        .search(
            &format!("CN=Extended-Rights,{config}"),
            Scope::OneLevel,
            "(objectClass=controlAccessRight)",
            &[
                "objectClass",
                "cn",
                "rightsGuid",
                "displayName",
                "objectCategory",
            ],
        )
        .await
        .unwrap()
    {
        put(e);
    }
    json!({
        "captured_from": "deploy/lab (Samba 4.22 AD DC, level 2016), by tests/integration/samba_fixture.rs",
        "domain": var("LAB_DOMAIN"),
        "netbios": var("LAB_NETBIOS"),
        "domain_sid": var("LAB_DOMAIN_SID"),
        "dcs": [
            {"host": var("LAB_DC1_HOST"), "ip": var("LAB_DC1_IP")},
            {"host": var("LAB_DC2_HOST"), "ip": var("LAB_DC2_IP")},
        ],
        "rootdse": rootdse,
        "entries": entries.into_values().collect::<Vec<_>>(),
    })
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs it"]
async fn fixture_matches_the_lab() {
    let captured = capture().await;
    if std::env::var_os("PROVD_WRITE_FIXTURE").is_some() {
        std::fs::write(FIXTURE, serde_json::to_string(&captured).unwrap()).unwrap();
        return;
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    // The facts the workflows depend on: schema and rights GUIDs, SIDs, names.
    let facts = |v: &Value| -> BTreeMap<String, String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let g = e["bin"]["schemaidguid"][0]
                    .as_str()
                    .or(e["attrs"]["rightsguid"][0].as_str())
                    .or(e["bin"]["objectsid"][0].as_str())?;
                Some((e["dn"].as_str()?.to_ascii_lowercase(), g.to_owned()))
            })
            .collect()
    };
    let (now, then) = (facts(&captured), facts(&stored));
    let drift: Vec<_> = then
        .iter()
        .filter(|(dn, g)| now.get(*dn) != Some(g))
        .map(|(dn, _)| dn.clone())
        .collect();
    assert!(
        drift.is_empty(),
        "the fixture drifted from the lab: {drift:?}"
    );
}
