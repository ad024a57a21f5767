//! Store tests of users, API tokens, collaborators and node tokens.

use super::*;
use crate::util::unix_ms;

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn users_are_created_listed_verified_and_deleted() {
    let (_d, s) = fresh().await;
    let ann = s
        .create_user("ann", role::MEMBER, Some("ann-secret-1"))
        .await
        .unwrap();
    assert!(ann.has_password && !ann.is_admin());
    assert!(matches!(
        s.create_user("ann", role::ADMIN, None).await,
        Err(StoreError::UserExists(_))
    ));
    s.create_user("bob", role::ADMIN, None).await.unwrap();
    let names: Vec<_> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "bob"]);

    assert_eq!(
        s.verify_password("ann", "ann-secret-1")
            .await
            .unwrap()
            .map(|u| u.name),
        Some("ann".into())
    );
    assert!(s.verify_password("ann", "wrong").await.unwrap().is_none());
    assert!(s
        .verify_password("nobody", "ann-secret-1")
        .await
        .unwrap()
        .is_none());
    // No password: no login at all.
    assert!(s.verify_password("bob", "").await.unwrap().is_none());
    assert!(s.set_password("ann", "new-secret-2").await.unwrap());
    assert!(s
        .verify_password("ann", "ann-secret-1")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .verify_password("ann", "new-secret-2")
        .await
        .unwrap()
        .is_some());
    assert!(!s.set_password("nobody", "x").await.unwrap());

    // ensure_user creates once and never overwrites.
    assert!(s
        .ensure_user("root", role::ADMIN, "pw-first")
        .await
        .unwrap());
    assert!(!s
        .ensure_user("root", role::ADMIN, "pw-other")
        .await
        .unwrap());
    assert!(s
        .verify_password("root", "pw-first")
        .await
        .unwrap()
        .is_some());

    assert!(s.delete_user("ann").await.unwrap());
    assert!(!s.delete_user("ann").await.unwrap());
}

#[tokio::test]
async fn tokens_are_hashed_revocable_and_expire() {
    let (_d, s) = fresh().await;
    s.create_user("ann", role::MEMBER, None).await.unwrap();
    let (row, secret) = s.create_token("ann", "laptop", None).await.unwrap();
    assert!(secret.starts_with("paas_"));
    // The secret is not stored anywhere in clear.
    let raw: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].contains(&secret[5..]));

    let (t, u) = s.token_user(&secret).await.unwrap().unwrap();
    assert_eq!((t.id.as_str(), u.name.as_str()), (row.id.as_str(), "ann"));
    let listed = s.list_tokens(Some("ann")).await.unwrap();
    assert!(listed[0].last_used_ms.is_some(), "use is recorded");
    assert!(s.token_user("paas_nope").await.unwrap().is_none());
    assert!(s.token_user("not-even-prefixed").await.unwrap().is_none());

    // Only the owner (or everyone's admin: None) revokes.
    assert!(!s.revoke_token(&row.id, Some("bob")).await.unwrap());
    assert!(s.revoke_token(&row.id, Some("ann")).await.unwrap());
    assert!(s.token_user(&secret).await.unwrap().is_none());

    let (_, old) = s
        .create_token("ann", "old", Some(unix_ms() - 1))
        .await
        .unwrap();
    assert!(s.token_user(&old).await.unwrap().is_none(), "expired");
    let (_, fresh_one) = s
        .create_token("ann", "new", Some(unix_ms() + 60_000))
        .await
        .unwrap();
    assert!(s.token_user(&fresh_one).await.unwrap().is_some());

    // Deleting the user takes their tokens.
    s.delete_user("ann").await.unwrap();
    assert!(s.token_user(&fresh_one).await.unwrap().is_none());
    assert!(s.list_tokens(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn collaborators_follow_apps_and_users() {
    let (_d, s) = fresh().await;
    s.create_user("ann", role::MEMBER, None).await.unwrap();
    s.create_user("bob", role::MEMBER, None).await.unwrap();
    s.create_app("one").await.unwrap();
    s.create_app("two").await.unwrap();
    assert!(s.add_collaborator("one", "ann").await.unwrap());
    assert!(
        !s.add_collaborator("one", "ann").await.unwrap(),
        "idempotent"
    );
    s.add_collaborator("one", "bob").await.unwrap();
    s.add_collaborator("two", "bob").await.unwrap();
    assert_eq!(s.list_collaborators("one").await.unwrap(), ["ann", "bob"]);
    assert_eq!(s.user_apps("bob").await.unwrap(), ["one", "two"]);
    assert!(s.is_collaborator("one", "ann").await.unwrap());
    assert!(!s.is_collaborator("two", "ann").await.unwrap());
    assert!(s.remove_collaborator("one", "bob").await.unwrap());
    assert!(!s.remove_collaborator("one", "bob").await.unwrap());
    // A collaborator must be a user.
    assert!(s.add_collaborator("one", "nobody").await.is_err());
    // Deleting the user or the app removes the rows.
    s.delete_user("ann").await.unwrap();
    assert!(s.list_collaborators("one").await.unwrap().is_empty());
    s.delete_app("two").await.unwrap();
    assert!(s.user_apps("bob").await.unwrap().is_empty());
}

#[tokio::test]
async fn node_tokens_are_per_node_and_replaceable() {
    let (_d, s) = fresh().await;
    let t1 = s.issue_node_token("n1").await.unwrap();
    assert!(t1.starts_with("paasnode_"));
    assert_eq!(s.node_for_token(&t1).await.unwrap().as_deref(), Some("n1"));
    let t1b = s.issue_node_token("n1").await.unwrap();
    assert!(s.node_for_token(&t1).await.unwrap().is_none(), "replaced");
    assert_eq!(s.node_for_token(&t1b).await.unwrap().as_deref(), Some("n1"));
    assert!(s.revoke_node_token("n1").await.unwrap());
    assert!(s.node_for_token(&t1b).await.unwrap().is_none());
    assert!(s.node_for_token("paas_x").await.unwrap().is_none());
}
