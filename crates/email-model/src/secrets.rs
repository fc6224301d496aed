//! Secrets (IMAP passwords, OAuth2 refresh tokens) encrypted at rest with ChaCha20-Poly1305.
//!
//! Each ciphertext is stored with the id of its key, so keys can rotate: new secrets use the
//! current key, old ones stay readable while their key is configured. Ciphertext layout:
//! a version byte (1), a 12-byte random nonce, then the sealed bytes with their 16-byte tag.
//! The mailbox id is bound as associated data, so a ciphertext copied to another row fails.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Result, StoreError};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A named 256-bit key.
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    key: Key,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A key from its id and 32 bytes encoded in base64.
    pub fn from_base64(id: &str, encoded: &str) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| StoreError::Secrets(format!("key {id}: not base64: {e}")))?;
        if bytes.len() != 32 {
            return Err(StoreError::Secrets(format!(
                "key {id}: {} bytes, a key has 32",
                bytes.len()
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            key: *Key::from_slice(&bytes),
        })
    }

    /// A new random key.
    pub fn generate(id: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Secrets(format!("no randomness: {e}")))?;
        Ok(Self {
            id: id.to_owned(),
            key: *Key::from_slice(&bytes),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.as_slice())
    }
}

/// The keys a process knows: the current one encrypts, all of them decrypt.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SecretKey,
    older: Vec<SecretKey>,
}

/// A secret as stored: the ciphertext and the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    pub ciphertext: Vec<u8>,
}

impl Keyring {
    pub fn new(current: SecretKey, older: Vec<SecretKey>) -> Self {
        Self { current, older }
    }

    /// Parses `id:base64,id:base64,…` (the first is current), the form of the configuration
    /// setting and of the `IMAP_SYNC__SECRET_KEYS` environment variable.
    pub fn from_config(value: &str) -> Result<Self> {
        let mut keys = value
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                let (id, encoded) = part.split_once(':').ok_or_else(|| {
                    StoreError::Secrets("keys are written id:base64, separated by commas".into())
                })?;
                SecretKey::from_base64(id.trim(), encoded)
            })
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(StoreError::Secrets("no key given".into()));
        }
        let current = keys.remove(0);
        Ok(Self::new(current, keys))
    }

    /// The key file beside an embedded database: read it, or create it (mode 0600) when
    /// there is none. Returns the keyring and whether the file was created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool)> {
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| StoreError::Secrets(format!("reading {}: {e}", path.display())))?;
            return Ok((Self::from_config(&text)?, false));
        }
        let key = SecretKey::generate("k1")?;
        let contents = format!("{}:{}\n", key.id(), key.to_base64());
        write_private(path, &contents)?;
        tracing::info!(path = %path.display(), "created a secret key file for the embedded database; back it up with the database");
        Ok((Self::new(key, Vec::new()), true))
    }

    /// The keyring for a database: the configured keys when given; else, for an embedded SQLite
    /// file, the key file beside it (`<database>.key`, created on first use); PostgreSQL without
    /// a configured key is refused with the way to set one.
    pub fn for_database(database_url: &str, configured: Option<&str>) -> Result<Self> {
        if let Some(keys) = configured.filter(|k| !k.trim().is_empty()) {
            return Self::from_config(keys);
        }
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            return Err(Self::missing_for_postgres());
        }
        let path = database_url
            .strip_prefix("sqlite://")
            .unwrap_or(database_url);
        let key_file = std::path::PathBuf::from(format!("{path}.key"));
        Ok(Self::load_or_create_file(&key_file)?.0)
    }

    /// The refusal for a production database without a configured key.
    pub fn missing_for_postgres() -> StoreError {
        StoreError::Secrets(
            "no secret key configured: PostgreSQL needs one. Generate 32 random bytes \
             (`head -c32 /dev/urandom | base64`) and set IMAP_SYNC__SECRET_KEYS=k1:<that base64> \
             (or secret_keys in the configuration file)"
                .into(),
        )
    }

    /// Encrypts `secret` for the row of mailbox `mailbox_id`.
    pub fn seal(&self, mailbox_id: i64, secret: &SecretString) -> Result<SealedSecret> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::Secrets(format!("no randomness: {e}")))?;
        let cipher = ChaCha20Poly1305::new(&self.current.key);
        let aad = mailbox_id.to_be_bytes();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Secrets("encryption failed".into()))?;
        let mut ciphertext = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        ciphertext.push(VERSION);
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&sealed);
        Ok(SealedSecret {
            key_id: self.current.id.clone(),
            ciphertext,
        })
    }

    /// Decrypts a secret of mailbox `mailbox_id`. A missing or wrong key is a clear error.
    pub fn open(&self, mailbox_id: i64, sealed: &SealedSecret) -> Result<SecretString> {
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                StoreError::Secrets(format!(
                    "the secret of mailbox {mailbox_id} was sealed with key {:?}, which is not configured",
                    sealed.key_id
                ))
            })?;
        let bytes = &sealed.ciphertext;
        if bytes.len() < 1 + NONCE_LEN + 16 || bytes[0] != VERSION {
            return Err(StoreError::Secrets(format!(
                "the secret of mailbox {mailbox_id} is malformed"
            )));
        }
        let cipher = ChaCha20Poly1305::new(&key.key);
        let aad = mailbox_id.to_be_bytes();
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&bytes[1..1 + NONCE_LEN]),
                Payload {
                    msg: &bytes[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                StoreError::Secrets(format!(
                    "the secret of mailbox {mailbox_id} does not open with key {:?}: wrong key, or altered data",
                    key.id
                ))
            })?;
        let text = String::from_utf8(plain).map_err(|_| {
            StoreError::Secrets(format!("the secret of mailbox {mailbox_id} is not text"))
        })?;
        Ok(SecretString::from(text))
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::Secrets(format!("creating {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| StoreError::Secrets(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_carry_no_plaintext() {
        let keyring = Keyring::new(SecretKey::generate("k1").unwrap(), Vec::new());
        let secret = SecretString::from("correct horse battery staple".to_owned());
        let sealed = keyring.seal(7, &secret).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"correct"));
        assert_eq!(
            keyring.open(7, &sealed).unwrap().expose_secret(),
            "correct horse battery staple"
        );
        // Bound to its row.
        assert!(keyring.open(8, &sealed).is_err());
    }

    #[test]
    fn a_wrong_or_missing_key_is_a_clear_error_and_rotation_keeps_old_secrets_readable() {
        let old = SecretKey::generate("k1").unwrap();
        let sealed = Keyring::new(old.clone(), Vec::new())
            .seal(1, &SecretString::from("pw".to_owned()))
            .unwrap();

        let other = Keyring::new(SecretKey::generate("k1").unwrap(), Vec::new());
        let error = other.open(1, &sealed).unwrap_err().to_string();
        assert!(error.contains("wrong key"), "{error}");

        let rotated_without_old = Keyring::new(SecretKey::generate("k2").unwrap(), Vec::new());
        let error = rotated_without_old
            .open(1, &sealed)
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"k1\", which is not configured"), "{error}");

        let rotated = Keyring::new(SecretKey::generate("k2").unwrap(), vec![old]);
        assert_eq!(rotated.open(1, &sealed).unwrap().expose_secret(), "pw");
        assert_eq!(
            rotated
                .seal(1, &SecretString::from("pw".to_owned()))
                .unwrap()
                .key_id,
            "k2"
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("email-model-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("imap-sync.key");
        let _ = std::fs::remove_file(&path);
        let (created, was_created) = Keyring::load_or_create_file(&path).unwrap();
        assert!(was_created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = created
            .seal(3, &SecretString::from("pw".to_owned()))
            .unwrap();
        let (loaded, was_created) = Keyring::load_or_create_file(&path).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.open(3, &sealed).unwrap().expose_secret(), "pw");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn postgres_needs_a_configured_key_and_sqlite_gets_a_key_file() {
        let error = Keyring::for_database("postgres://db/mirror", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("IMAP_SYNC__SECRET_KEYS"), "{error}");
        let encoded = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(
            Keyring::for_database("postgres://db/mirror", Some(&format!("k9:{encoded}"))).is_ok()
        );

        let dir = std::env::temp_dir().join(format!("email-model-fordb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("mirror.sqlite3");
        let first = Keyring::for_database(&database.to_string_lossy(), None).unwrap();
        assert!(dir.join("mirror.sqlite3.key").exists());
        let again =
            Keyring::for_database(&format!("sqlite://{}", database.display()), None).unwrap();
        let sealed = first.seal(1, &SecretString::from("pw".to_owned())).unwrap();
        assert_eq!(again.open(1, &sealed).unwrap().expose_secret(), "pw");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_parse_from_configuration() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let keyring = Keyring::from_config(&format!("new:{encoded}, old:{encoded}")).unwrap();
        assert_eq!(keyring.current.id(), "new");
        assert_eq!(keyring.older[0].id(), "old");
        assert!(Keyring::from_config("k1:short").is_err());
        assert!(Keyring::from_config("").is_err());
        assert!(!format!("{keyring:?}").contains(&encoded));
    }
}
