//! Encryption of secrets at rest (AES-256-GCM with a key from configuration).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts small secrets; the output is `nonce || ciphertext+tag`.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| anyhow::anyhow!("the data key is not valid base64"))?;
        anyhow::ensure!(bytes.len() == 32, "the data key must be 32 bytes");
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).expect("32-byte key"),
        })
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        [nonce.as_slice(), &ciphertext].concat()
    }

    pub fn decrypt(&self, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed value too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("decryption failed: wrong data key or corrupted value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let a = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let b = SecretBox::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let sealed = a.encrypt(b"secret");
        assert_eq!(a.decrypt(&sealed).unwrap(), b"secret");
        assert!(b.decrypt(&sealed).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
}
