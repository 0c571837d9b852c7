//! What the serve tests share: a real browser.

pub mod browser;
