//! The one signed envelope: a statement's canonical bytes and a signature over exactly
//! those bytes, `u32 length ‖ statement ‖ u32 length ‖ signature`, lengths big-endian.
//!
//! The statement stays as bytes because that is what was signed; it is decoded only to
//! learn which key to verify with ([`Signed::statement`]), and since decoding is strict
//! the bytes are exactly the encoding of what it decodes to. What a statement is (its
//! domain tag, its layout, its cap inside an envelope) is the statement type's, through
//! [`Statement`]; the envelope is the same for all of them.

use std::fmt;
use std::marker::PhantomData;

use super::codec::{put_part, Codec, Reader};
use crate::DomainError;

/// Largest signature accepted in an envelope (ML-DSA-65 signatures are 3309 bytes).
pub const MAX_SIGNATURE_LEN: usize = 8192;

/// Something a key signs: a [`Codec`] value that opens with its own domain-separation tag,
/// so a signature over one kind of statement never passes for a signature over another.
///
/// Adding a statement is one file: its type, its tag, its [`Codec`] (tag first, then the
/// fields) and this trait's constants; [`Signed`] then carries it.
pub trait Statement: Codec {
    /// What a wrong tag is reported as when this statement is decoded.
    const WRONG_TAG: DomainError = DomainError::WrongTag { what: Self::WHAT };
    /// What its envelope is called in errors (`signed statement`).
    const ENVELOPE: &'static str;
    /// What the statement is called inside its envelope, in errors (`statement`).
    const FIELD: &'static str;
    /// Largest statement its envelope accepts, checked before anything is copied.
    const MAX_LEN: usize;

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        Self::from_bytes(bytes).map_err(|e| match e {
            super::WireError::WrongTag { .. } => Self::WRONG_TAG,
            e => e.into(),
        })
    }
}

/// A statement's canonical bytes and a signature over exactly those bytes. Not verified:
/// checking the signature is the certs crate's work (it knows the keys).
pub struct Signed<S> {
    /// The statement's canonical bytes ([`Codec::to_bytes`]), at most [`Statement::MAX_LEN`].
    pub statement_bytes: Vec<u8>,
    /// Signature over `statement_bytes`, at most [`MAX_SIGNATURE_LEN`] bytes.
    pub signature: Vec<u8>,
    statement: PhantomData<fn() -> S>,
}

impl<S: Statement> Signed<S> {
    /// The envelope of `statement_bytes` (a statement's canonical bytes) and their
    /// `signature`.
    pub fn new(statement_bytes: Vec<u8>, signature: Vec<u8>) -> Self {
        Signed {
            statement_bytes,
            signature,
            statement: PhantomData,
        }
    }

    /// `statement`, signed by `sign` over its canonical bytes.
    pub fn sign(statement: &S, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Self {
        let statement_bytes = statement.to_bytes();
        let signature = sign(&statement_bytes);
        Self::new(statement_bytes, signature)
    }

    /// The envelope's bytes. Parts over the caps encode, but [`Signed::decode`] refuses
    /// them.
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.statement_bytes, &self.signature)
    }

    /// Parses an envelope strictly, enforcing the size caps before copying anything. The
    /// statement inside is not decoded: see [`Signed::statement`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let mut r = Reader::new(S::ENVELOPE, bytes);
        let statement_bytes = r.part(S::FIELD, S::MAX_LEN)?.to_vec();
        let signature = r.part("signature", MAX_SIGNATURE_LEN)?.to_vec();
        r.finish()?;
        Ok(Self::new(statement_bytes, signature))
    }

    /// Decodes the statement inside, to learn which key to verify with.
    pub fn statement(&self) -> Result<S, DomainError> {
        S::decode(&self.statement_bytes)
    }
}

/// `u32 length ‖ statement ‖ u32 length ‖ signature`: [`Signed::encode`].
fn encode(statement: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + statement.len() + signature.len());
    put_part(&mut out, statement);
    put_part(&mut out, signature);
    out
}

// By hand rather than derived: a derive would ask `S` for the trait although only bytes
// are held.
impl<S> fmt::Debug for Signed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("statement_bytes", &self.statement_bytes)
            .field("signature", &self.signature)
            .finish()
    }
}

impl<S> Clone for Signed<S> {
    fn clone(&self) -> Self {
        Signed {
            statement_bytes: self.statement_bytes.clone(),
            signature: self.signature.clone(),
            statement: PhantomData,
        }
    }
}

impl<S> PartialEq for Signed<S> {
    fn eq(&self, other: &Self) -> bool {
        self.statement_bytes == other.statement_bytes && self.signature == other.signature
    }
}

impl<S> Eq for Signed<S> {}
