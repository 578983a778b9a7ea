//! The GetMetricData queries the console asks CloudWatch for (AWS/Lambda, per function).
import type { MetricDataQuery } from "@aws-sdk/client-cloudwatch";

/** A query id CloudWatch accepts (starts lower-case, letters, digits, `_`). */
export const qid = (prefix: string, i: number) => `${prefix}_${i}`;

export function lambdaQuery(
  id: string,
  metric: string,
  stat: string,
  period: number,
  functionName: string,
  resource?: string,
): MetricDataQuery {
  const dims = [{ Name: "FunctionName", Value: functionName }];
  if (resource) dims.push({ Name: "Resource", Value: resource });
  return {
    Id: id,
    MetricStat: { Metric: { Namespace: "AWS/Lambda", MetricName: metric, Dimensions: dims }, Period: period, Stat: stat },
    ReturnData: true,
  };
}

/** Splits queries into GetMetricData calls of at most 500 each. */
export function batches<T>(items: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
