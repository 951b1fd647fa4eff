//! # fluxacct-flux
//!
//! A small safe client of a running Flux instance. `libflux-core.so.2` is
//! loaded at run time with libloading ([`discover`] says where from), so
//! the programs that use it run, and are tested, on machines with no
//! Flux; nothing links libflux at build time. Only non-variadic libflux
//! calls are used (jobtap-abi.md §6–7).
//!
//! * [`Flux`]: an open handle; [`Flux::rpc`] and [`Flux::rpc_unless`]
//!   (one request, one response), [`Flux::rpc_send`] and
//!   [`Flux::kvs_lookup_send`] (requests kept in flight, answered through
//!   [`Pending::get`]), [`Flux::rpc_streaming`] (a `FLUX_RPC_STREAMING`
//!   request whose responses a [`Stream`] yields one by one until the
//!   end-of-stream error, `ENODATA`).
//! * [`Flux::register_service`]: a [`Service`] receives the requests sent
//!   to its name ([`Service::recv`]) with the requester's credentials,
//!   and answers each [`Request`] (`flux_respond`, `flux_respond_error`).
//! * [`JobListQuery`], [`Flux::job_list`], [`Flux::job_list_id`]: job-list.
//! * [`job_state`], [`job_result`]: flux-core's job state and result bits
//!   (their home is `fluxacct_core::job_state`).
//!
//! All `unsafe` code is in the private `ffi` module. The crate reads no
//! environment variables: [`FluxEnv`] carries what the caller read.

#![deny(unsafe_code)]

pub mod discover;
mod error;
#[allow(unsafe_code)] // The libflux-core calls: the crate's only FFI.
mod ffi;
mod job_list;

pub use discover::{libflux_candidates, Candidate, FluxEnv, Unreachable, LIBFLUX};
pub use error::{Error, Result};
pub use ffi::{Flux, Pending, Request, Service, Stream, ENODATA, ENOENT, EPERM, ROLE_OWNER, ROLE_USER};
pub use fluxacct_core::job_state;
pub use fluxacct_core::job_state::result as job_result;
pub use job_list::JobListQuery;
