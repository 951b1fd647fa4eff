//! Moving sites between flux-accounting and fluxacct: reading a
//! flux-accounting database ([`source`]) into a [`site::Site`], the events
//! that establish it ([`events`]), streaming its job records ([`jobs`])
//! and writing them all into a new ledger ([`import`]);
//! writing flux-accounting's CSV files and hierarchy ([`export`]); and
//! reading its CSV files back as rows ([`pop`]).

pub mod events;
pub mod export;
pub mod import;
pub mod jobs;
pub mod pop;
pub mod site;
pub mod source;

#[cfg(test)]
mod tests;
