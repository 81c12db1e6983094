use lyceum_platform::convert::{opt_id_to_string, opt_timestamp, timestamp};
use lyceum_platform::money;
use lyceum_proto::instructor::v1 as pb;

use crate::store::payments::PaymentRow;
use crate::store::payouts::PayoutRow;
use crate::store::revenue::TransactionRow;

pub fn money(amount_minor: i64, currency: &str) -> Option<pb::Money> {
    Some(money::proto(amount_minor, currency))
}

/// Amounts per currency, one entry per currency sorted by code (callers give them in
/// that order, as the queries sort by currency).
pub fn amounts<'a>(per_currency: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<pb::Money> {
    per_currency
        .into_iter()
        .map(|(currency, amount_minor)| money::proto(amount_minor, currency))
        .collect()
}

pub fn payout(row: PayoutRow) -> pb::Payout {
    pb::Payout {
        id: row.id.to_string(),
        request_id: row.request_id,
        instructor_id: row.instructor_id.to_string(),
        amount: money(row.amount_minor, &row.currency),
        transaction_count: row.transaction_count,
        create_time: Some(timestamp(row.created_at)),
    }
}

pub fn payment(row: PaymentRow) -> pb::Payment {
    pb::Payment {
        id: row.id.to_string(),
        request_id: row.request_id,
        payer_id: row.payer_id.to_string(),
        instructor_id: opt_id_to_string(row.instructor_id),
        organization_id: opt_id_to_string(row.organization_id),
        amount: money(row.amount_minor, &row.currency),
        refunded: money(row.refunded_minor, &row.currency),
        provider: row.provider.to_proto(),
        provider_transaction_id: row.provider_transaction_id.unwrap_or_default(),
        status: row.status.to_proto(),
        r#type: row.payment_type.to_proto(),
        related_entity_id: opt_id_to_string(row.related_entity_id),
        invoice_number: row.invoice_number,
        create_time: Some(timestamp(row.created_at)),
        succeed_time: opt_timestamp(row.succeeded_at),
    }
}

pub fn transaction(row: TransactionRow) -> pb::RevenueTransaction {
    pb::RevenueTransaction {
        id: row.id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        r#type: row.transaction_type.to_proto(),
        course_id: opt_id_to_string(row.course_id),
        enrollment_id: opt_id_to_string(row.enrollment_id),
        workshop_id: opt_id_to_string(row.workshop_id),
        registration_id: opt_id_to_string(row.registration_id),
        payment_id: opt_id_to_string(row.payment_id),
        student_id: opt_id_to_string(row.student_id),
        amount: money(row.amount_minor, &row.currency),
        fee_percentage: f64::from(row.fee_bps) / 100.0,
        platform_fee: money(row.platform_fee_minor, &row.currency),
        instructor_earnings: money(row.instructor_earnings_minor, &row.currency),
        payout_status: row.payout_status,
        create_time: Some(timestamp(row.created_at)),
    }
}
