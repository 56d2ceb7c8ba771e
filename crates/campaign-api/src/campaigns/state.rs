//! The states of a campaign, of its shops and of its items, as Rust enums stored as TEXT. Each list below is the
//! one place a variant meets its stored (and JSON) spelling ([`text_enum!`]). The migration
//! `20261126000050_campaigns.sql` holds the same lists as CHECK constraints.

use shopee_client::api::discount::DiscountStatus;

use pg_enum::text_enum;

text_enum! {
    /// `campaigns.state`.
    pub enum CampaignState {
        /// Shopee calls in progress, or interrupted (resumed by a retry with the same Idempotency-Key,
        /// compensated by the reconcile loop when abandoned).
        Creating = "creating",
        /// At least one shop's discount exists.
        Active = "active",
        /// No discount exists.
        Failed = "failed",
        Ended = "ended",
        Deleted = "deleted",
    }
}

text_enum! {
    /// What the API shows as a campaign's `status`: an active campaign's place in time, else its state.
    pub enum CampaignStatus {
        Upcoming = "upcoming",
        Ongoing = "ongoing",
        Expired = "expired",
        Creating = "creating",
        Failed = "failed",
        Ended = "ended",
        Deleted = "deleted",
    }
}

text_enum! {
    /// `campaign_shops.state`: one Shopee discount per (campaign, shop).
    pub enum ShopState {
        /// Nothing sent.
        Pending = "pending",
        /// `add_discount` sent, its answer not recorded yet.
        Creating = "creating",
        /// The discount exists; items are being added.
        DiscountCreated = "discount_created",
        /// Items added.
        Active = "active",
        /// `delete_discount` needed (retried by the reconcile loop).
        Compensating = "compensating",
        /// No discount on Shopee.
        Failed = "failed",
        Ended = "ended",
        Deleted = "deleted",
    }
}

text_enum! {
    /// `campaign_items.state`.
    pub enum ItemState {
        /// Not sent yet.
        Pending = "pending",
        /// Shopee accepted it.
        Added = "added",
        /// Shopee refused it (`error_code`, `error_message`).
        Rejected = "rejected",
        /// Taken out by PATCH.
        Removed = "removed",
    }
}

text_enum! {
    /// `campaign_shops.shopee_status`: Shopee's status of the discount as last seen.
    pub enum ShopeeStatus {
        Upcoming = "upcoming",
        Ongoing = "ongoing",
        Expired = "expired",
        /// Not in the shop's `get_discount_list` any more.
        Missing = "missing",
        /// Shopee answered a status we do not know.
        Unknown = "unknown",
    }
}

impl From<DiscountStatus> for ShopeeStatus {
    fn from(s: DiscountStatus) -> Self {
        match s {
            DiscountStatus::Upcoming => Self::Upcoming,
            DiscountStatus::Ongoing => Self::Ongoing,
            DiscountStatus::Expired => Self::Expired,
            DiscountStatus::All | DiscountStatus::Unknown => Self::Unknown,
        }
    }
}

impl ShopeeStatus {
    /// Shopee's status of a discount; `Unknown` when the answer carried none.
    pub fn of(status: Option<DiscountStatus>) -> Self {
        status.map_or(Self::Unknown, Self::from)
    }
}

/// The error code of an item that was never sent because its shop's discount failed.
pub const NOT_ADDED: &str = "not_added";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_text() {
        for s in CampaignState::ALL {
            assert_eq!(s.as_str().parse::<CampaignState>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in ShopState::ALL {
            assert_eq!(s.as_str().parse::<ShopState>().unwrap(), *s);
        }
        for s in ItemState::ALL {
            assert_eq!(s.as_str().parse::<ItemState>().unwrap(), *s);
        }
        for s in CampaignStatus::ALL {
            assert_eq!(s.as_str().parse::<CampaignStatus>().unwrap(), *s);
        }
        for s in ShopeeStatus::ALL {
            assert_eq!(s.as_str().parse::<ShopeeStatus>().unwrap(), *s);
        }
        assert_eq!(ShopState::DiscountCreated.as_str(), "discount_created");
        assert!("paused".parse::<CampaignState>().is_err());
    }

    /// The stored spellings are the ones the migration's CHECK constraints allow.
    #[test]
    fn spellings_match_the_migration() {
        let sql = include_str!("../../../../migrations/20261126000050_campaigns.sql");
        let quoted = |v: &str| format!("'{v}'");
        for s in CampaignState::ALL {
            assert!(sql.contains(&quoted(s.as_str())), "{s}");
        }
        for s in ShopState::ALL {
            assert!(sql.contains(&quoted(s.as_str())), "{s}");
        }
        for s in ItemState::ALL {
            assert!(sql.contains(&quoted(s.as_str())), "{s}");
        }
    }
}
