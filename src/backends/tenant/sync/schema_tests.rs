//! Reading and editing the job schema.

use super::*;

/// The interfaces note's trimmed schema, plus fields provd does not know
/// (`unknownTop`, `metadata`, `flowTypes`: invented [I]) that must survive.
fn schema() -> Value {
    serde_json::from_str(
        r#"{"id":"AD2AADProvisioning","version":"v1","unknownTop":{"keep":[1,2]},
        "synchronizationRules":[{"id":"6c409270-f78a-4bc6-af23-7cf3ab6482fe",
         "name":"USER_INBOUND_USER","sourceDirectoryName":"lab.example.test","targetDirectoryName":"Azure Active Directory",
         "metadata":[{"key":"supportsProvisionOnDemand","value":"true"}],
         "containerFilter":{"includedContainers":[]},"groupFilter":{"includedGroups":[]},
         "objectMappings":[{"name":"Provision Active Directory users","sourceObjectName":"user","targetObjectName":"User",
           "enabled":true,"flowTypes":"Add, Update, Delete","attributeMappings":[{"targetAttributeName":"DisplayName","source":{"expression":"[displayName]","name":"displayName","type":"Attribute","parameters":[]}}]},
          {"name":"Provision Active Directory inetOrgPersons","sourceObjectName":"inetOrgPerson","targetObjectName":"User","enabled":true,"attributeMappings":[]},
          {"name":"Provision Active Directory groups","sourceObjectName":"group","targetObjectName":"Group","enabled":true,"attributeMappings":[]}]}],
        "directories":[]}"#,
    )
    .unwrap()
}

fn ous() -> SyncScope {
    SyncScope::OrganizationalUnits(vec!["OU=SyncPilot,DC=lab,DC=example,DC=test".into()])
}

fn credential_count(schema: &Value, mapping: usize) -> usize {
    schema["synchronizationRules"][0]["objectMappings"][mapping]["attributeMappings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| is_credential_data(a))
        .count()
}

#[test]
fn the_documented_schema_reads_as_all_users_without_hashes() {
    let read = read(schema()).unwrap();
    assert_eq!(read.scope, SyncScope::AllUsers);
    assert!(!read.password_hash_mapping);
}

#[test]
fn a_scope_is_set_and_cleared() {
    let mut s = schema();
    edit(&mut s, &ous(), false).unwrap();
    let rule = &s["synchronizationRules"][0];
    assert_eq!(
        rule["containerFilter"],
        json!({"includedContainers": ["OU=SyncPilot,DC=lab,DC=example,DC=test"]})
    );
    assert_eq!(rule["groupFilter"], json!({"includedGroups": []}));
    assert_eq!(read(s.clone()).unwrap().scope, ous());

    // Groups replace the OUs: never both filters at once.
    let groups = SyncScope::SecurityGroups(vec!["CN=SyncPilotGroup,OU=SyncPilot,DC=lab".into()]);
    edit(&mut s, &groups, false).unwrap();
    let rule = &s["synchronizationRules"][0];
    assert_eq!(rule["containerFilter"], json!({"includedContainers": []}));
    assert_eq!(read(s.clone()).unwrap().scope, groups);

    edit(&mut s, &SyncScope::AllUsers, false).unwrap();
    assert_eq!(read(s.clone()).unwrap().scope, SyncScope::AllUsers);
    assert_eq!(s, schema(), "all users again: the schema as it came");
}

#[test]
fn all_users_adds_no_filter_where_there_was_none() {
    let mut s = schema();
    let rule = s["synchronizationRules"][0].as_object_mut().unwrap();
    rule.remove("containerFilter");
    rule.insert("groupFilter".into(), Value::Null);
    let before = s.clone();
    edit(&mut s, &SyncScope::AllUsers, false).unwrap();
    assert_eq!(s, before);
    edit(&mut s, &ous(), false).unwrap();
    assert_eq!(read(s).unwrap().scope, ous());
}

#[test]
fn the_password_hash_mapping_is_added_once_to_both_and_removed() {
    let mut s = schema();
    edit(&mut s, &SyncScope::AllUsers, true).unwrap();
    edit(&mut s, &SyncScope::AllUsers, true).unwrap();
    assert_eq!(credential_count(&s, 0), 1, "user, once");
    assert_eq!(credential_count(&s, 1), 1, "inetOrgPerson, once");
    assert_eq!(credential_count(&s, 2), 0, "not on groups");
    let added = &s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][1];
    assert_eq!(added, &credential_data());
    assert!(read(s.clone()).unwrap().password_hash_mapping);

    edit(&mut s, &SyncScope::AllUsers, false).unwrap();
    assert_eq!(credential_count(&s, 0), 0);
    assert_eq!(credential_count(&s, 1), 0);
    assert!(!read(s.clone()).unwrap().password_hash_mapping);
    assert_eq!(s, schema(), "the other mappings as they were");
}

#[test]
fn unknown_fields_survive_an_edit() {
    let mut s = schema();
    edit(&mut s, &ous(), true).unwrap();
    assert_eq!(s["unknownTop"], json!({"keep": [1, 2]}));
    let rule = &s["synchronizationRules"][0];
    assert_eq!(rule["metadata"][0]["key"], "supportsProvisionOnDemand");
    assert_eq!(
        rule["objectMappings"][0]["flowTypes"],
        "Add, Update, Delete"
    );
    assert_eq!(rule["id"], "6c409270-f78a-4bc6-af23-7cf3ab6482fe");
    assert_eq!(s["directories"], json!([]));
}

#[test]
fn hashes_need_a_user_mapping() {
    let mut s = schema();
    s["synchronizationRules"][0]["objectMappings"] = json!([]);
    assert!(matches!(
        edit(&mut s, &SyncScope::AllUsers, true),
        Err(TenantError::Protocol(_))
    ));
    let mut no_rules = json!({"synchronizationRules": []});
    assert!(edit(&mut no_rules, &SyncScope::AllUsers, false).is_err());
}

#[test]
fn a_schema_above_four_mib_is_too_large() {
    let mut s = schema();
    assert!(body(&s).is_ok());
    // One long DN list, as 50 000 OUs would make.
    let dn = format!("OU={},DC=lab,DC=example,DC=test", "x".repeat(100));
    let many = SyncScope::OrganizationalUnits(vec![dn; 50_000]);
    edit(&mut s, &many, false).unwrap();
    match body(&s) {
        Err(TenantError::TooLarge { what, bytes, limit }) => {
            assert_eq!(what, "the job schema");
            assert!(bytes > limit && limit == 4 * 1024 * 1024, "{bytes}");
        }
        other => panic!("{other:?}"),
    }
}
