pub mod availability;
pub mod verdict;
