//! An IPC frame from a (compromised) peer, decoded as each kind of message.
#![no_main]
use ipc::frame::decode;
use ipc::messages::*;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode::<ParentToChild>(data);
    let _ = decode::<ChildToParent>(data);
    let _ = decode::<SmtpToQueue>(data);
    let _ = decode::<QueueToSmtp>(data);
    let _ = decode::<KeyRequest>(data);
    let _ = decode::<KeyReply>(data);
    let _ = decode::<QueueToMta>(data);
    let _ = decode::<MtaToQueue>(data);
    let _ = decode::<QueueToDelivery>(data);
    let _ = decode::<DeliveryToQueue>(data);
    let _ = decode::<DeliveryToImap>(data);
    let _ = decode::<ControlRequest>(data);
    let _ = decode::<ControlReply>(data);
});
