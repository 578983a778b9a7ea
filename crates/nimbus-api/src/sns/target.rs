//! SNS's half of the authorization table: each call's IAM action and topic ARN, as the
//! Service Authorization Reference lists them for Amazon SNS. Subscription calls act on their
//! subscription's topic (AWS's denials of Unsubscribe and GetSubscriptionAttributes name the
//! topic), PublishBatch needs `sns:Publish`, and the listings act on no one topic.

use super::*;
use crate::authz::{Scope, Target};

fn tags(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))
}

/// The topic a subscription ARN (`<topic arn>:<id>`) belongs to.
fn topic_of(subscription_arn: &str) -> String {
    match subscription_arn.rsplit_once(':') {
        Some((topic, _)) if topic.starts_with("arn:") => topic.to_string(),
        _ => subscription_arn.to_string(),
    }
}

impl SnsRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use SnsCall::*;
        Some(match self.call.as_ref().ok()? {
            CreateTopic(i) => {
                Target::on("sns:CreateTopic", format!("arn:aws:sns:{}:{}:{}", scope.region, scope.account, i.name)).with_tags(tags(&i.tags))
            }
            DeleteTopic(i) => Target::on("sns:DeleteTopic", i.topic_arn.clone()),
            ListTopics(_) => Target::any("sns:ListTopics"),
            GetTopicAttributes(i) => Target::on("sns:GetTopicAttributes", i.topic_arn.clone()),
            SetTopicAttributes(i) => Target::on("sns:SetTopicAttributes", i.topic_arn.clone()),
            Subscribe(i) => Target::on("sns:Subscribe", i.topic_arn.clone())
                .with("sns:Protocol", i.protocol.clone())
                .with_some("sns:Endpoint", i.endpoint.clone()),
            ConfirmSubscription(i) => Target::on("sns:ConfirmSubscription", i.topic_arn.clone()),
            Unsubscribe(i) => Target::on("sns:Unsubscribe", topic_of(&i.subscription_arn)),
            ListSubscriptions(_) => Target::any("sns:ListSubscriptions"),
            ListSubscriptionsByTopic(i) => Target::on("sns:ListSubscriptionsByTopic", i.topic_arn.clone()),
            GetSubscriptionAttributes(i) => Target::on("sns:GetSubscriptionAttributes", topic_of(&i.subscription_arn)),
            SetSubscriptionAttributes(i) => Target::on("sns:SetSubscriptionAttributes", topic_of(&i.subscription_arn)),
            Publish(i) => match i.topic_arn.as_ref().or(i.target_arn.as_ref()) {
                Some(arn) => Target::on("sns:Publish", arn.clone()),
                // A text message to a phone number acts on no topic.
                None => Target::any("sns:Publish"),
            },
            PublishBatch(i) => Target::on("sns:Publish", i.topic_arn.clone()),
            TagResource(i) => Target::on("sns:TagResource", i.resource_arn.clone()).with_tags(tags(&i.tags)),
            UntagResource(i) => Target::on("sns:UntagResource", i.resource_arn.clone()).with_values("aws:TagKeys", i.tag_keys.clone()),
            ListTagsForResource(i) => Target::on("sns:ListTagsForResource", i.resource_arn.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, context, form, target};

    const T: &str = "arn:aws:sns:us-east-1:123456789012:alerts";
    const T_ENC: &str = "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts";

    #[test]
    fn actions_and_topics() {
        let q = |rest: &str| form(&format!("Version=2010-03-31&{rest}"));
        let sub = format!("{T_ENC}%3A0f4e7c2a-1111-4222-8333-444455556666");
        check(vec![
            (q("Action=CreateTopic&Name=alerts"), "sns:CreateTopic", T),
            (q(&format!("Action=DeleteTopic&TopicArn={T_ENC}")), "sns:DeleteTopic", T),
            (q("Action=ListTopics"), "sns:ListTopics", "*"),
            (q(&format!("Action=GetTopicAttributes&TopicArn={T_ENC}")), "sns:GetTopicAttributes", T),
            (q(&format!("Action=SetTopicAttributes&TopicArn={T_ENC}&AttributeName=DisplayName&AttributeValue=x")), "sns:SetTopicAttributes", T),
            (q(&format!("Action=Subscribe&TopicArn={T_ENC}&Protocol=sqs&Endpoint=e")), "sns:Subscribe", T),
            (q(&format!("Action=ConfirmSubscription&TopicArn={T_ENC}&Token=t")), "sns:ConfirmSubscription", T),
            (q(&format!("Action=Unsubscribe&SubscriptionArn={sub}")), "sns:Unsubscribe", T),
            (q("Action=ListSubscriptions"), "sns:ListSubscriptions", "*"),
            (q(&format!("Action=ListSubscriptionsByTopic&TopicArn={T_ENC}")), "sns:ListSubscriptionsByTopic", T),
            (q(&format!("Action=GetSubscriptionAttributes&SubscriptionArn={sub}")), "sns:GetSubscriptionAttributes", T),
            (
                q(&format!("Action=SetSubscriptionAttributes&SubscriptionArn={sub}&AttributeName=RawMessageDelivery&AttributeValue=true")),
                "sns:SetSubscriptionAttributes",
                T,
            ),
            (q(&format!("Action=Publish&TopicArn={T_ENC}&Message=m")), "sns:Publish", T),
            (q(&format!("Action=Publish&TargetArn={T_ENC}&Message=m")), "sns:Publish", T),
            (q("Action=Publish&PhoneNumber=%2B15555550100&Message=m"), "sns:Publish", "*"),
            (
                q(&format!("Action=PublishBatch&TopicArn={T_ENC}&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m")),
                "sns:Publish",
                T,
            ),
            (q(&format!("Action=TagResource&ResourceArn={T_ENC}&Tags.member.1.Key=k&Tags.member.1.Value=v")), "sns:TagResource", T),
            (q(&format!("Action=UntagResource&ResourceArn={T_ENC}&TagKeys.member.1=k")), "sns:UntagResource", T),
            (q(&format!("Action=ListTagsForResource&ResourceArn={T_ENC}")), "sns:ListTagsForResource", T),
        ]);
    }

    #[test]
    fn subscribe_says_its_protocol_and_endpoint() {
        let t = target(&form(&format!("Version=2010-03-31&Action=Subscribe&TopicArn={T_ENC}&Protocol=https&Endpoint=https%3A%2F%2Fe")));
        assert_eq!(context(&t, "sns:Protocol"), Some(&["https".to_string()][..]));
        assert_eq!(context(&t, "sns:Endpoint"), Some(&["https://e".to_string()][..]));
    }
}
