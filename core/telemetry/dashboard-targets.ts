/**
 * Every query of the provisioned Grafana dashboards (compose/grafana/dashboards/*.json), so tests can run them
 * without Grafana: PromQL against a real Prometheus, SQL against the real ClickHouse of a test stack. Grafana is
 * not installable here; these readers are how the dashboards are validated.
 *
 * SQL targets may use only the macros that expand to SQL ClickHouse 18.16 runs: `$__timeFilter(column)`,
 * `$__fromTime`, `$__toTime`. expandGrafanaSqlMacros expands them the way grafana-clickhouse-datasource does for
 * DateTime columns and rejects any other `$__` macro (`$__timeGroup`, `$__timeInterval`, the `_ms` variants…).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../config.js';

export const DASHBOARDS_DIR = join(REPO_ROOT, 'compose', 'grafana', 'dashboards');

export interface DashboardTargetBase {
  /** Dashboard file name, e.g. dalston-cost.json. */
  readonly dashboard: string;
  readonly panelId: number;
  readonly panelTitle: string;
  readonly refId: string;
  /** Data source uid of the target (or of its panel). */
  readonly datasourceUid: string;
}

export interface PromQLTarget extends DashboardTargetBase {
  readonly kind: 'promql';
  readonly expr: string;
}

export interface SqlTarget extends DashboardTargetBase {
  readonly kind: 'sql';
  /** The SQL as Grafana holds it, macros unexpanded. */
  readonly rawSql: string;
  /** grafana-clickhouse-datasource queryType: `table` or `timeSeries` (first column the time, rows in time order). */
  readonly queryType: string;
}

export type DashboardTarget = PromQLTarget | SqlTarget;

interface RawDatasource {
  readonly type?: unknown;
  readonly uid?: unknown;
}
interface RawTarget {
  readonly refId?: unknown;
  readonly expr?: unknown;
  readonly rawSql?: unknown;
  readonly queryType?: unknown;
  readonly datasource?: RawDatasource;
}
interface RawPanel {
  readonly id?: unknown;
  readonly title?: unknown;
  readonly type?: unknown;
  readonly datasource?: RawDatasource;
  readonly targets?: readonly RawTarget[];
  readonly panels?: readonly RawPanel[];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** The dashboard JSON files of dir, sorted by name. */
export function dashboardFiles(dir: string = DASHBOARDS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** Every PromQL and SQL target of every dashboard in dir (rows' nested panels included). */
export function listDashboardTargets(dir: string = DASHBOARDS_DIR): DashboardTarget[] {
  const out: DashboardTarget[] = [];
  for (const file of dashboardFiles(dir)) {
    const doc = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { panels?: readonly RawPanel[] };
    const visit = (panel: RawPanel): void => {
      for (const child of panel.panels ?? []) visit(child);
      for (const t of panel.targets ?? []) {
        const base = {
          dashboard: file,
          panelId: typeof panel.id === 'number' ? panel.id : -1,
          panelTitle: str(panel.title),
          refId: str(t.refId),
          datasourceUid: str(t.datasource?.uid ?? panel.datasource?.uid),
        };
        if (typeof t.expr === 'string') out.push({ ...base, kind: 'promql', expr: t.expr });
        else if (typeof t.rawSql === 'string') out.push({ ...base, kind: 'sql', rawSql: t.rawSql, queryType: str(t.queryType) });
        else throw new Error(`${file} panel "${base.panelTitle}" ${base.refId}: target has neither expr nor rawSql`);
      }
    };
    for (const p of doc.panels ?? []) visit(p);
  }
  return out;
}

/** Only the SQL targets, for an end-to-end test that runs them on ClickHouse. */
export function listDashboardSqlTargets(dir: string = DASHBOARDS_DIR): SqlTarget[] {
  return listDashboardTargets(dir).filter((t): t is SqlTarget => t.kind === 'sql');
}

/** Only the PromQL targets. */
export function listDashboardPromQLTargets(dir: string = DASHBOARDS_DIR): PromQLTarget[] {
  return listDashboardTargets(dir).filter((t): t is PromQLTarget => t.kind === 'promql');
}

export interface TimeRange {
  /** Epoch seconds. */
  readonly from: number;
  /** Epoch seconds. */
  readonly to: number;
}

/**
 * Expands the supported Grafana macros for a time range; throws on any other `$__` macro or Grafana variable,
 * since that text would reach ClickHouse unexpanded or expand to SQL 18.16 cannot run.
 */
export function expandGrafanaSqlMacros(rawSql: string, range: TimeRange): string {
  const from = `toDateTime(${Math.floor(range.from)})`;
  const to = `toDateTime(${Math.floor(range.to)})`;
  const sql = rawSql
    .replace(/\$__timeFilter\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)/g, (_m, col: string) => `${col} >= ${from} AND ${col} <= ${to}`)
    .replace(/\$__fromTime\b/g, from)
    .replace(/\$__toTime\b/g, to);
  const left = /\$\{?[A-Za-z_][A-Za-z0-9_]*/.exec(sql);
  if (left) throw new Error(`unsupported Grafana macro or variable ${left[0]} in: ${rawSql}`);
  return sql;
}
