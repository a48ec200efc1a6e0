//! The keys of a JWKS: parsing a set key by key, and choosing the key for a token.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::Miss;

/// Shorter RSA moduli are factorable at practical cost.
const MIN_RSA_BITS: usize = 2048;

pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    key: DecodingKey,
}

pub(super) struct KeySet(pub(super) Vec<Key>);

impl KeySet {
    pub(super) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
        if !self.0.iter().any(|k| k.alg == alg) {
            return Err(Miss::AlgorithmNotAllowed);
        }
        let mut candidates: Vec<&Key> = match kid {
            Some(kid) => self.0.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None => self.0.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(Miss::UnknownKid);
        }
        // A kid naming a key of another algorithm is a confusion attempt, not a lookup miss.
        candidates.retain(|k| k.alg == alg);
        match candidates.as_slice() {
            [only] => Ok(only.key.clone()),
            [] => Err(Miss::AlgorithmNotAllowed),
            // Without a kid, trying each key would turn one request into many verifications.
            _ => Err(Miss::UnknownKid),
        }
    }

    pub(super) fn has_kid(&self, kid: &str) -> bool {
        self.0.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

pub(super) fn parse_set(body: &[u8]) -> anyhow::Result<KeySet> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(body).context("jwks is not a json object with a keys array")?;
    let mut keys = Vec::new();
    // Key by key, so an IdP publishing one key we cannot use does not take down the rest.
    for (index, value) in raw.keys.into_iter().enumerate() {
        match parse_key(value) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::warn!(index, reason, "jwks key ignored"),
        }
    }
    if keys.is_empty() {
        bail!("jwks holds no usable RS256, ES256 or EdDSA signing key");
    }
    Ok(KeySet(keys))
}

fn parse_key(value: serde_json::Value) -> Result<Key, &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "unparseable or unsupported jwk")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops lacks verify");
    }
    let declared = jwk.common.key_algorithm;
    // A missing "alg" is inferred from the key type, as RFC 7517 makes it optional.
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) if matches!(declared, None | Some(KeyAlgorithm::RS256)) => {
            let n = decode_component(&p.n)?;
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err("rsa modulus shorter than 2048 bits");
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(p)
            if p.curve == EllipticCurve::P256 && matches!(declared, None | Some(KeyAlgorithm::ES256)) =>
        {
            if decode_component(&p.x)?.len() != 32 || decode_component(&p.y)?.len() != 32 {
                return Err("p-256 coordinates must be 32 bytes");
            }
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(p)
            if p.curve == EllipticCurve::Ed25519 && matches!(declared, None | Some(KeyAlgorithm::EdDSA)) =>
        {
            if decode_component(&p.x)?.len() != 32 {
                return Err("ed25519 public key must be 32 bytes");
            }
            Algorithm::EdDSA
        }
        _ => return Err("key type or algorithm not supported (RS256, ES256, EdDSA only)"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "invalid key material")?;
    Ok(Key { kid: jwk.common.key_id, alg, key })
}

fn decode_component(value: &str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| "key component is not base64url")
}
