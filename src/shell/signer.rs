//! `AppSigner` on WebCrypto: `crypto.subtle.importKey("pkcs8", …, RSASSA-PKCS1-v1_5 SHA-256)`
//! then `sign`. The imported `CryptoKey` is kept for the isolate's life (importing parses the
//! RSA key, the costly part), next to the DER it came from so a rotated key is imported anew.
//!
//! **Invariant**: error texts are fixed sentences: nothing from the key reaches a log.

use crate::forge::github::app::AppKey;
use crate::service::AppSigner;
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use worker::js_sys::{self, Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The DER last imported and its `CryptoKey`.
    static KEY: RefCell<Option<(Vec<u8>, JsValue)>> = const { RefCell::new(None) };
}

pub struct WebCryptoSigner;

impl AppSigner for WebCryptoSigner {
    fn sign<'a>(
        &'a self,
        key: &'a AppKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let subtle = subtle()?;
            let crypto_key = crypto_key(&subtle, key.der()).await?;
            let args = Array::new();
            args.push(&algorithm()?);
            args.push(&crypto_key);
            args.push(&Uint8Array::from(input));
            let signed = call(&subtle, "sign", &args, "crypto.subtle.sign failed").await?;
            let buffer: ArrayBuffer = signed
                .dyn_into()
                .map_err(|_| "crypto.subtle.sign gave no ArrayBuffer".to_string())?;
            Ok(Uint8Array::new(&buffer).to_vec())
        })
    }
}

/// The `CryptoKey` for `der`, imported once per isolate.
async fn crypto_key(subtle: &JsValue, der: &[u8]) -> Result<JsValue, String> {
    let cached = KEY.with(|k| {
        k.borrow()
            .as_ref()
            .filter(|(d, _)| d.as_slice() == der)
            .map(|(_, key)| key.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let usages = Array::new();
    usages.push(&JsValue::from_str("sign"));
    let args = Array::new();
    args.push(&JsValue::from_str("pkcs8"));
    args.push(&Uint8Array::from(der));
    args.push(&algorithm()?);
    args.push(&JsValue::FALSE);
    args.push(&usages);
    let key = call(
        subtle,
        "importKey",
        &args,
        "the App private key could not be imported",
    )
    .await?;
    KEY.with(|k| *k.borrow_mut() = Some((der.to_vec(), key.clone())));
    Ok(key)
}

fn subtle() -> Result<JsValue, String> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|_| "no crypto global".to_string())?;
    Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(|_| "no crypto.subtle".to_string())
}

/// `{name: "RSASSA-PKCS1-v1_5", hash: "SHA-256"}`.
fn algorithm() -> Result<JsValue, String> {
    let alg = Object::new();
    let set = |k: &str, v: &str| Reflect::set(&alg, &JsValue::from_str(k), &JsValue::from_str(v));
    set("name", "RSASSA-PKCS1-v1_5")
        .and_then(|_| set("hash", "SHA-256"))
        .map_err(|_| "algorithm object refused".to_string())?;
    Ok(alg.into())
}

/// Calls `subtle[method](...args)` and awaits its promise; `why` on any failure.
async fn call(subtle: &JsValue, method: &str, args: &Array, why: &str) -> Result<JsValue, String> {
    let fail = |_| why.to_string();
    let f: Function = Reflect::get(subtle, &JsValue::from_str(method))
        .map_err(fail)?
        .dyn_into()
        .map_err(fail)?;
    let promise: Promise = f
        .apply(subtle, args)
        .map_err(fail)?
        .dyn_into()
        .map_err(fail)?;
    JsFuture::from(promise).await.map_err(fail)
}
