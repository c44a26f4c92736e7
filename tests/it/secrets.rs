//! The secret store: AES-256-GCM at rest, failures are clean errors.

use workflows::{
    redact::Secret,
    secrets::{SecretError, SecretStore, SecretsKey},
};

use crate::support::TestDb;

const TOKEN: &str = "access-sandbox-6a3c5b0e-1234-4bcd-9f00-aabbccddeeff";

#[tokio::test]
async fn a_secret_round_trips_and_is_not_stored_in_plaintext() {
    let (db, pool) = TestDb::migrated().await;
    let store = SecretStore::new(SecretsKey::generate(), vec![]);
    let mut conn = pool.acquire().await.unwrap();

    let secret_ref = store.put(&mut conn, &Secret::new(TOKEN)).await.unwrap();
    assert_eq!(store.get(&mut conn, &secret_ref).await.unwrap().expose(), TOKEN);

    let raw: Vec<u8> = sqlx::query_scalar("select ciphertext from secrets where secret_ref = $1")
        .bind(&secret_ref)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(
        !raw.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "plaintext stored"
    );

    store
        .replace(&mut conn, &secret_ref, &Secret::new("access-sandbox-new"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&mut conn, &secret_ref).await.unwrap().expose(),
        "access-sandbox-new"
    );
    assert!(store.delete(&mut conn, &secret_ref).await.unwrap());
    assert!(matches!(
        store.get(&mut conn, &secret_ref).await,
        Err(SecretError::NotFound(_))
    ));
    assert!(!store.delete(&mut conn, &secret_ref).await.unwrap());
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_wrong_key_fails_cleanly_without_revealing_anything() {
    let (db, pool) = TestDb::migrated().await;
    let mut conn = pool.acquire().await.unwrap();
    let right = SecretStore::new(SecretsKey::generate(), vec![]);
    let secret_ref = right.put(&mut conn, &Secret::new(TOKEN)).await.unwrap();

    // A store without the key says which key id it would need.
    let other = SecretStore::new(SecretsKey::generate(), vec![]);
    let err = other.get(&mut conn, &secret_ref).await.unwrap_err();
    assert!(matches!(err, SecretError::UnknownKey { .. }), "{err}");
    assert!(!err.to_string().contains(TOKEN));

    // A different key presented under the stored key id fails authentication.
    sqlx::query("update secrets set key_id = $2 where secret_ref = $1")
        .bind(&secret_ref)
        .bind(other.current_key_id())
        .execute(&mut *conn)
        .await
        .unwrap();
    let err = other.get(&mut conn, &secret_ref).await.unwrap_err();
    assert!(matches!(err, SecretError::Decrypt(_)), "{err}");
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn tampered_ciphertext_nonce_or_a_swapped_row_fail_cleanly() {
    let (db, pool) = TestDb::migrated().await;
    let mut conn = pool.acquire().await.unwrap();
    let store = SecretStore::new(SecretsKey::generate(), vec![]);
    let a = store.put(&mut conn, &Secret::new(TOKEN)).await.unwrap();
    let b = store
        .put(&mut conn, &Secret::new("access-sandbox-b"))
        .await
        .unwrap();

    // Flip one bit of the ciphertext.
    sqlx::query("update secrets set ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) where secret_ref = $1")
        .bind(&a)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(matches!(
        store.get(&mut conn, &a).await,
        Err(SecretError::Decrypt(_))
    ));

    // Flip one bit of b's nonce.
    sqlx::query(
        "update secrets set nonce = set_byte(nonce, 3, get_byte(nonce, 3) # 128) where secret_ref = $1",
    )
    .bind(&b)
    .execute(&mut *conn)
    .await
    .unwrap();
    assert!(matches!(
        store.get(&mut conn, &b).await,
        Err(SecretError::Decrypt(_))
    ));

    // Copy a valid sealed row onto another reference: the reference is bound in.
    let c = store
        .put(&mut conn, &Secret::new("access-sandbox-c"))
        .await
        .unwrap();
    let d = store
        .put(&mut conn, &Secret::new("access-sandbox-d"))
        .await
        .unwrap();
    sqlx::query(
        "update secrets set nonce = src.nonce, ciphertext = src.ciphertext
         from (select nonce, ciphertext from secrets where secret_ref = $1) src where secret_ref = $2",
    )
    .bind(&c)
    .bind(&d)
    .execute(&mut *conn)
    .await
    .unwrap();
    assert!(matches!(
        store.get(&mut conn, &d).await,
        Err(SecretError::Decrypt(_))
    ));
    assert_eq!(
        store.get(&mut conn, &c).await.unwrap().expose(),
        "access-sandbox-c"
    );
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_rotated_key_still_opens_old_secrets_and_replace_reseals_them() {
    let (db, pool) = TestDb::migrated().await;
    let mut conn = pool.acquire().await.unwrap();
    let old_key = SecretsKey::generate();
    let old = SecretStore::new(old_key.clone(), vec![]);
    let secret_ref = old.put(&mut conn, &Secret::new(TOKEN)).await.unwrap();

    let new_key = SecretsKey::generate();
    let rotated = SecretStore::new(new_key.clone(), vec![old_key.clone()]);
    assert_eq!(rotated.get(&mut conn, &secret_ref).await.unwrap().expose(), TOKEN);
    rotated
        .replace(&mut conn, &secret_ref, &Secret::new(TOKEN))
        .await
        .unwrap();
    let key_id: String = sqlx::query_scalar("select key_id from secrets where secret_ref = $1")
        .bind(&secret_ref)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(key_id, new_key.id());
    // Once re-sealed, the new key alone opens it.
    let only_new = SecretStore::new(new_key, vec![]);
    assert_eq!(
        only_new.get(&mut conn, &secret_ref).await.unwrap().expose(),
        TOKEN
    );
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}
