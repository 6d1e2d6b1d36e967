//! Containing panics: a panic in one session, queue job or delivery ends only
//! that unit of work. The hook installed in every child logs where it
//! happened (one bounded line) and counts it for `--status`; `contain` turns the
//! panic of one future into an `Err` its caller answers with the protocol's
//! error (SMTP 421 4.3.0, IMAP BYE, a temporary failure for queue).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Install the logging hook (child start-up, before any session).
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown payload".to_string()
        };
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown location".into());
        crate::stats::count(ipc::messages::Event::Panic);
        log::error!("panic at {at}: {}", crate::log::cut(&msg, 300));
    }));
}

/// A future whose panic is caught; the hook has already logged it.
pub struct Contained<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for Contained<'_, T> {
    type Output = Result<T, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The future is dropped right after a panic and never polled again, so
        // no broken invariant inside it can be observed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

pub fn contain<'a, T>(f: impl Future<Output = T> + Send + 'a) -> Contained<'a, T> {
    Contained(Box::pin(f))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        assert_eq!(super::contain(async { 7 }).await, Ok(7));
        let r = super::contain(async {
            if std::hint::black_box(true) {
                panic!("injected");
            }
            1
        })
        .await;
        assert_eq!(r, Err(()));
    }
}
