//! Assessments through the gRPC API: templates and bad input, answers scored exactly under
//! 50 concurrent callers, completion with its results, recommendations, event and month,
//! and an organization's trend over 10,000 assessments read from the monthly rollup.

mod common;

use common::*;
use lyceum_learning::jobs::assessment_scores::AssessmentScores;
use lyceum_learning::store::assessments::ORG_TREND_SQL;
use lyceum_platform::db::TenantContext;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::events::v1 as events;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, eventually, violated_fields};
use prost::Message;
use sqlx::AssertSqlSafe;
use tonic::Code;
use uuid::Uuid;

use pb::{AnswerType as A, Dimension as D};

async fn assert_no_drift(app: &TestApp) {
    let drift = AssessmentScores.check(&app.learning).await.unwrap();
    assert!(drift.is_empty(), "{drift:?}");
}

fn question(dimension: D, answer_type: A, weight: f64) -> pb::Question {
    pb::Question {
        dimension: dimension as i32,
        answer_type: answer_type as i32,
        prompt: format!("How is your {dimension:?}?"),
        options: if answer_type == A::MultipleChoice {
            vec!["rarely".into(), "often".into()]
        } else {
            vec![]
        },
        weight,
        ..Default::default()
    }
}

async fn create_template(
    app: &TestApp,
    creator: &User,
    organization: Option<Uuid>,
    questions: Vec<pb::Question>,
) -> Result<pb::Template, tonic::Status> {
    app.assessments()
        .create_template(authed(
            pb::CreateTemplateRequest {
                template: Some(pb::Template {
                    organization_id: organization.map(|o| o.to_string()).unwrap_or_default(),
                    name: "Adaptability check".into(),
                    questions,
                    ..Default::default()
                }),
            },
            &creator.token,
        ))
        .await
        .map(|r| r.into_inner().template.unwrap())
}

async fn start(
    app: &TestApp,
    user: &User,
    template: &pb::Template,
) -> Result<pb::Assessment, tonic::Status> {
    app.assessments()
        .start_assessment(authed(
            pb::StartAssessmentRequest {
                template_id: template.id.clone(),
                r#type: pb::AssessmentType::Full as i32,
                organization_id: user.org.map(|o| o.to_string()).unwrap_or_default(),
            },
            &user.token,
        ))
        .await
        .map(|r| r.into_inner().assessment.unwrap())
}

async fn answer(
    app: &TestApp,
    user: &User,
    assessment: &str,
    question: &str,
    value: Option<i32>,
    text: &str,
) -> Result<pb::Assessment, tonic::Status> {
    app.assessments()
        .answer_question(authed(
            pb::AnswerQuestionRequest {
                assessment_id: assessment.into(),
                question_id: question.into(),
                value,
                text: text.into(),
            },
            &user.token,
        ))
        .await
        .map(|r| r.into_inner().assessment.unwrap())
}

async fn complete(app: &TestApp, user: &User, id: &str) -> Result<pb::Assessment, tonic::Status> {
    app.assessments()
        .complete_assessment(authed(
            pb::CompleteAssessmentRequest { id: id.into() },
            &user.token,
        ))
        .await
        .map(|r| r.into_inner().assessment.unwrap())
}

async fn trend(
    app: &TestApp,
    user: &User,
    org: Uuid,
    months: i32,
) -> Result<Vec<pb::TrendMonth>, tonic::Status> {
    app.assessments()
        .get_org_adaptability_trend(authed(
            pb::GetOrgAdaptabilityTrendRequest {
                organization_id: org.to_string(),
                months,
            },
            &user.token,
        ))
        .await
        .map(|r| r.into_inner().months)
}

/// One question of every kind in every dimension: scored ones weighing 0.5, 1.25, 2 and 0,
/// a text one weighing nothing.
fn every_kind() -> Vec<pb::Question> {
    let mut questions = Vec::new();
    for d in [
        D::Individual,
        D::Leadership,
        D::Cultural,
        D::Embedding,
        D::Velocity,
    ] {
        questions.push(question(d, A::Scale, 0.5));
        questions.push(question(d, A::MultipleChoice, 1.25));
        questions.push(question(d, A::FearToConfidence, 2.0));
        questions.push(question(d, A::Scale, 0.0));
        questions.push(question(d, A::Text, 0.0));
    }
    questions
}

#[tokio::test]
async fn bad_input_gets_the_right_code_with_field_details() {
    let app = TestApp::spawn().await;
    let admin = app.platform_admin();
    let org = Uuid::now_v7();
    let other_org = Uuid::now_v7();
    let org_admin = app.org_admin(org);

    // A negative weight, an empty name and a text question with weight: every violation at
    // once, each on its field.
    let status = app
        .assessments()
        .create_template(authed(
            pb::CreateTemplateRequest {
                template: Some(pb::Template {
                    name: String::new(),
                    questions: vec![
                        question(D::Individual, A::Scale, -1.0),
                        question(D::Cultural, A::Text, 2.0),
                        question(D::Velocity, A::MultipleChoice, 1.0001),
                        pb::Question {
                            prompt: "no dimension".into(),
                            answer_type: A::Scale as i32,
                            weight: 1.0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
            },
            &admin.token,
        ))
        .await;
    let status = assert_code(status, Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "template.name",
            "template.questions[0].weight",
            "template.questions[1].weight",
            "template.questions[2].weight",
            "template.questions[3].dimension",
        ],
        "{status:?}"
    );

    // Org admins create only their own organization's templates; members none.
    assert_code(
        create_template(&app, &org_admin, Some(other_org), every_kind()).await,
        Code::PermissionDenied,
    );
    assert_code(
        create_template(&app, &org_admin, None, every_kind()).await,
        Code::PermissionDenied,
    );
    let member = app.student(Some(org));
    assert_code(
        create_template(&app, &member, Some(org), every_kind()).await,
        Code::PermissionDenied,
    );
    let template = create_template(&app, &org_admin, Some(org), every_kind())
        .await
        .unwrap();
    // Another organization's member does not see it.
    let outsider = app.student(Some(other_org));
    assert_code(start(&app, &outsider, &template).await, Code::NotFound);

    let assessment = start(&app, &member, &template).await.unwrap();
    let scale = &template.questions[0].id;
    let text = &template.questions[4].id;
    // Out of scale, both ways, and a value with a text.
    for value in [101, -1] {
        let status = assert_code(
            answer(&app, &member, &assessment.id, scale, Some(value), "").await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), vec!["value"], "{status:?}");
    }
    let status = assert_code(
        answer(&app, &member, &assessment.id, "not-an-id", Some(500), "").await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, vec!["question_id", "value"]);
    // The answer must fit the question's kind.
    let status = assert_code(
        answer(&app, &member, &assessment.id, scale, None, "I adapt").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["value"]);
    let status = assert_code(
        answer(&app, &member, &assessment.id, text, None, "").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["text"]);
    let status = assert_code(
        answer(&app, &member, &assessment.id, scale, Some(50), "and words").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["text"]);

    // Another's assessment: NOT_FOUND, for a colleague and for the org's admin alike
    // (admins read their members' assessments, never answer them).
    let colleague = app.student(Some(org));
    for caller in [&colleague, &outsider, &org_admin] {
        assert_code(
            answer(&app, caller, &assessment.id, scale, Some(50), "").await,
            Code::NotFound,
        );
        assert_code(complete(&app, caller, &assessment.id).await, Code::NotFound);
    }
    // A question of another template.
    let platform = create_template(&app, &admin, None, every_kind())
        .await
        .unwrap();
    assert_code(
        answer(
            &app,
            &member,
            &assessment.id,
            &platform.questions[0].id,
            Some(50),
            "",
        )
        .await,
        Code::NotFound,
    );
    // Starting in another organization than one's own.
    let status = app
        .assessments()
        .start_assessment(authed(
            pb::StartAssessmentRequest {
                template_id: platform.id.clone(),
                r#type: pb::AssessmentType::Quick as i32,
                organization_id: other_org.to_string(),
            },
            &member.token,
        ))
        .await;
    assert_code(status, Code::PermissionDenied);
    // Nothing answered yet: nothing to complete.
    assert_code(
        complete(&app, &member, &assessment.id).await,
        Code::FailedPrecondition,
    );
    // The trend: months out of range, and for outsiders.
    let status = assert_code(
        trend(&app, &org_admin, org, 37).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["months"]);
    assert_code(trend(&app, &member, org, 12).await, Code::PermissionDenied);
    assert_code(
        trend(&app, &org_admin, other_org, 12).await,
        Code::PermissionDenied,
    );
}

/// The scores recomputed from the stored answers, as the database's exact decimals.
async fn scores_from_answers(app: &TestApp, assessment: &str) -> Vec<(String, Option<String>)> {
    let mut conn = app.db.admin_connection().await;
    sqlx::query_as(
        "SELECT d.dimension,
                (round(sum(a.weight * a.value) / nullif(sum(a.weight) FILTER (WHERE a.value IS NOT NULL), 0), 2))::text
           FROM unnest(ARRAY['individual', 'leadership', 'cultural', 'embedding', 'velocity']) AS d(dimension)
           LEFT JOIN learning.assessment_answers a
             ON a.dimension = d.dimension AND a.assessment_id = $1 AND a.value IS NOT NULL
          GROUP BY d.dimension ORDER BY d.dimension",
    )
    .bind(Uuid::parse_str(assessment).unwrap())
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

fn api_scores(a: &pb::Assessment) -> Vec<(String, Option<String>)> {
    let s = a.scores.unwrap();
    // In the order of the recomputation's (alphabetical).
    let scores = vec![
        ("cultural".to_owned(), s.cultural),
        ("embedding".to_owned(), s.embedding),
        ("individual".to_owned(), s.individual),
        ("leadership".to_owned(), s.leadership),
        ("velocity".to_owned(), s.velocity),
    ];
    scores
        .into_iter()
        .map(|(d, s)| (d, s.map(|s| format!("{s:.2}"))))
        .collect()
}

#[tokio::test]
async fn fifty_concurrent_answers_give_exactly_the_scores_recomputed_from_the_stored_answers() {
    let app = TestApp::spawn().await;
    let admin = app.platform_admin();
    // 40 scored questions with weights that do not divide evenly, and a text question.
    let dims = [
        D::Individual,
        D::Leadership,
        D::Cultural,
        D::Embedding,
        D::Velocity,
    ];
    let weights = [0.333, 1.0, 2.5, 0.125, 7.0, 0.0, 1.001, 3.0];
    let mut questions: Vec<pb::Question> = (0..40)
        .map(|i| question(dims[i % 5], A::FearToConfidence, weights[i % 8]))
        .collect();
    questions.push(question(D::Leadership, A::Text, 0.0));
    let template = create_template(&app, &admin, None, questions)
        .await
        .unwrap();
    let student = app.student(None);
    let assessment = start(&app, &student, &template).await.unwrap();

    // 50 answers at once: every scored question once, the first nine again (replacing an
    // answer under contention) and the text question.
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let app_channel = app.assessments();
        let token = student.token.clone();
        let assessment_id = assessment.id.clone();
        let (question_id, value, text) = if i == 49 {
            (
                template.questions[40].id.clone(),
                None,
                "I adapt".to_owned(),
            )
        } else {
            (
                template.questions[i % 40].id.clone(),
                Some(((i * 37) % 101) as i32),
                String::new(),
            )
        };
        tasks.push(tokio::spawn(async move {
            let mut client = app_channel;
            client
                .answer_question(authed(
                    pb::AnswerQuestionRequest {
                        assessment_id,
                        question_id,
                        value,
                        text,
                    },
                    &token,
                ))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let stored = app
        .assessments()
        .get_assessment(authed(
            pb::GetAssessmentRequest {
                id: assessment.id.clone(),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(stored.answer_count, 41);
    assert_eq!(stored.answers.len(), 41);
    let expected = scores_from_answers(&app, &assessment.id).await;
    assert_eq!(api_scores(&stored), expected);
    // Every dimension has weight, so every one is scored; the overall is their mean.
    assert!(expected.iter().all(|(_, s)| s.is_some()), "{expected:?}");
    let mut conn = app.db.admin_connection().await;
    let (overall, mean): (String, String) = sqlx::query_as(
        "SELECT overall_score::text,
                round((individual_score + leadership_score + cultural_score + embedding_score
                       + velocity_score) / 5, 2)::text
           FROM learning.assessments WHERE id = $1",
    )
    .bind(Uuid::parse_str(&assessment.id).unwrap())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(overall, mean);
    assert_eq!(format!("{:.2}", stored.overall_score.unwrap()), overall);
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn completion_fixes_results_and_recommendations_publishes_and_counts_in_the_month() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let org_admin = app.org_admin(org);
    let template = create_template(&app, &org_admin, Some(org), every_kind())
        .await
        .unwrap();
    let member = app.student(Some(org));
    let assessment = start(&app, &member, &template).await.unwrap();
    let q = |i: usize| template.questions[i].id.clone();
    // Individual: (0.5·80 + 1.25·40) / 1.75 = 51.428… → 51.43; answering again replaces.
    answer(&app, &member, &assessment.id, &q(0), Some(10), "")
        .await
        .unwrap();
    answer(&app, &member, &assessment.id, &q(0), Some(80), "")
        .await
        .unwrap();
    answer(&app, &member, &assessment.id, &q(1), Some(40), "")
        .await
        .unwrap();
    // Leadership: only a zero-weight answer and a text: no score.
    answer(&app, &member, &assessment.id, &q(8), Some(90), "")
        .await
        .unwrap();
    answer(&app, &member, &assessment.id, &q(9), None, "We adapt")
        .await
        .unwrap();
    // Cultural 70, embedding 20.
    answer(&app, &member, &assessment.id, &q(12), Some(70), "")
        .await
        .unwrap();
    let before = answer(&app, &member, &assessment.id, &q(17), Some(20), "")
        .await
        .unwrap();
    let scores = before.scores.unwrap();
    assert_eq!(scores.individual, Some(51.43));
    assert_eq!(scores.leadership, None);
    assert_eq!(scores.cultural, Some(70.0));
    assert_eq!(scores.embedding, Some(20.0));
    assert_eq!(scores.velocity, None);
    // (51.43 + 70 + 20) / 3 = 47.1433… → 47.14
    assert_eq!(before.overall_score, Some(47.14));
    assert_eq!(before.answer_count, 6);

    let done = complete(&app, &member, &assessment.id).await.unwrap();
    assert_eq!(done.status, pb::AssessmentStatus::Completed as i32);
    assert!(done.complete_time.is_some());
    let recommended: Vec<(i32, f64)> = done
        .recommendations
        .iter()
        .map(|r| (r.dimension, r.score))
        .collect();
    assert_eq!(
        recommended,
        vec![(D::Embedding as i32, 20.0), (D::Individual as i32, 51.43)]
    );
    assert!(done.recommendations.iter().all(|r| !r.text.is_empty()));
    // The event carries the scores, and the relay hands it to NATS (JetStream acks it).
    let mut conn = app.db.admin_connection().await;
    let (subject, envelope): (String, Vec<u8>) = sqlx::query_as(
        "SELECT subject, envelope FROM learning.outbox
          WHERE subject = 'learning.assessment.completed'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let event: events::AssessmentCompleted = events::EventEnvelope::decode(envelope.as_slice())
        .unwrap()
        .payload
        .unwrap()
        .to_msg()
        .unwrap();
    assert_eq!(subject, "learning.assessment.completed");
    assert_eq!(event.assessment_id, assessment.id);
    assert_eq!(event.user_id, member.id.to_string());
    assert_eq!(event.organization_id, org.to_string());
    assert_eq!(event.assessment_type, "full");
    assert_eq!(event.individual_score, Some(51.43));
    assert_eq!(event.leadership_score, None);
    assert_eq!(event.overall_score, Some(47.14));
    assert_eq!(event.version, done.version);
    eventually("the completed event published to NATS", || async {
        let mut conn = app.db.admin_connection().await;
        sqlx::query_scalar::<_, bool>(
            "SELECT published_at IS NOT NULL FROM learning.outbox
              WHERE subject = 'learning.assessment.completed'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    })
    .await;
    // No answer, completion or abandonment once completed.
    assert_code(
        answer(&app, &member, &assessment.id, &q(2), Some(50), "").await,
        Code::FailedPrecondition,
    );
    assert_code(
        complete(&app, &member, &assessment.id).await,
        Code::FailedPrecondition,
    );

    // An abandoned one counts nowhere.
    let other = start(&app, &member, &template).await.unwrap();
    answer(&app, &member, &other.id, &q(0), Some(100), "")
        .await
        .unwrap();
    let abandoned = app
        .assessments()
        .abandon_assessment(authed(
            pb::AbandonAssessmentRequest {
                id: other.id.clone(),
            },
            &member.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(abandoned.status, pb::AssessmentStatus::Abandoned as i32);
    assert_code(
        complete(&app, &member, &other.id).await,
        Code::FailedPrecondition,
    );

    // The organization's admin sees the month, and the member's assessments.
    let months = trend(&app, &org_admin, org, 3).await.unwrap();
    assert_eq!(months.len(), 3);
    let this_month = months.last().unwrap();
    assert_eq!(this_month.completed_count, 1);
    assert_eq!(this_month.average_overall_score, Some(47.14));
    assert!(months[..2].iter().all(|m| m.completed_count == 0));
    let listed = app
        .assessments()
        .list_assessments(authed(
            pb::ListAssessmentsRequest {
                organization_id: org.to_string(),
                ..Default::default()
            },
            &org_admin.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .assessments;
    assert_eq!(listed.len(), 2);
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn the_trend_of_ten_thousand_assessments_reads_at_most_a_row_per_month() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let org_admin = app.org_admin(org);
    let template = create_template(&app, &org_admin, Some(org), every_kind())
        .await
        .unwrap();
    let mut conn = app.db.admin_connection().await;
    // 10,000 completed assessments of the organization over the last 12 months and 5,000
    // of other organizations beside them, each with an answer to every weighted scale
    // question, set-based.
    sqlx::query(
        "INSERT INTO learning.assessments
           (id, template_id, user_id, organization_id, assessment_type, status, answer_count,
            results, started_at, completed_at)
         SELECT gen_random_uuid(), $1, gen_random_uuid(),
                CASE WHEN g <= 10000 THEN $2 ELSE gen_random_uuid() END,
                'full', 'completed', 5, '{}'::jsonb, t.at - interval '1 hour', t.at
           FROM generate_series(1, 15000) AS g,
                LATERAL (SELECT date_trunc('month', now()) - make_interval(months => g % 12)
                                + make_interval(secs => g) AS at) AS t",
    )
    .bind(Uuid::parse_str(&template.id).unwrap())
    .bind(org)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO learning.assessment_answers
           (id, assessment_id, question_id, user_id, dimension, weight, value)
         SELECT gen_random_uuid(), a.id, q.id, a.user_id, q.dimension, q.weight,
                abs(hashtext(a.id::text || q.id::text)) % 101
           FROM learning.assessments a
           JOIN learning.assessment_questions q
             ON q.template_id = a.template_id AND q.answer_type = 'scale' AND q.weight > 0",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // They bypassed the service: the reconciliation finds every sum, score and month
    // missing, and computes them from the answers.
    assert!(
        !AssessmentScores
            .check(&app.learning)
            .await
            .unwrap()
            .is_empty()
    );
    AssessmentScores.repair(&app.learning).await.unwrap();
    assert_no_drift(&app).await;
    sqlx::query("ANALYZE learning.assessments, learning.org_adaptability_months")
        .execute(&mut conn)
        .await
        .unwrap();

    let months = trend(&app, &org_admin, org, 12).await.unwrap();
    assert_eq!(months.len(), 12);
    let expected: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT to_char(date_trunc('month', completed_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'),
                count(*), round(avg(overall_score), 2)::text
           FROM learning.assessments WHERE organization_id = $1
          GROUP BY 1 ORDER BY 1",
    )
    .bind(org)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let got: Vec<(String, i64, Option<String>)> = months
        .iter()
        .map(|m| {
            (
                m.month.clone(),
                m.completed_count,
                m.average_overall_score.map(|s| format!("{s:.2}")),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.iter().map(|m| m.1).sum::<i64>(), 10_000);

    // The plan, as the service's role under the admin's policies.
    let context = TenantContext {
        user_id: Some(org_admin.id),
        org_id: Some(org),
        roles: vec!["org_admin".into(), "user".into()],
    };
    let mut tx = app.learning.begin(&context).await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {ORG_TREND_SQL}"
    )))
    .bind(org)
    .bind(12)
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let plan = plan.join("\n");
    println!("GetOrgAdaptabilityTrend plan (12 months, 10,000 assessments):\n{plan}");
    assert!(
        plan.contains("org_adaptability_months_pkey"),
        "the trend reads the rollup by its key:\n{plan}"
    );
    assert!(
        !plan.contains("on assessments"),
        "the trend never reads assessments:\n{plan}"
    );
}
