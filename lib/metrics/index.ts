// Prometheus metrics (prom-client), served as text at /metrics on the loopback console. Counters are
// counted as things happen (HTTP answers); gauges read the subsystems' own state when scraped, through the
// plain functions node.ts hands in, so this module imports no subsystem and a scrape never walks the store
// (files and bytes by state come from the persisted counters).

import client from 'prom-client';

export interface MetricsSources {
  store: () => { files: number; bytes: number; chunks: number; chunkBytes: number; uploadSlots: { inUse: number; max: number } };
  /** files and bytes by state, unpaid bytes, credits earned (absent in a free drop box) */
  ledger?: () => { byState: Record<string, { files: number; bytes: number }>; unpaidBytes: number; creditsEarned: number } | undefined;
  /** file addresses derived ahead and ready (absent in a free drop box) */
  addressPool?: () => number | undefined;
  electrum?: () => { connected: boolean; subscriptions: number; hot: number; height?: number } | undefined;
  tor?: () => { mode: string; bootstrap: number; onion?: string } | undefined;
  /** each configured .bit name's state (the names subsystem's) */
  names?: () => Array<{ name: string; state: string }>;
  /** the books (lib/economy): totals since the first day, and the prices in force */
  economy?: () => { revenueSats: number; costsSats: number; profitSats: number; cashSats: number; runwayDays: number | null; utilization: number; storagePrice: number; transferPrice: number } | undefined;
}

/** What the HTTP app reports of each answer (lib/http adapts koa to this). */
export interface HttpObserver {
  answered(a: { kind: 'upload' | 'download' | 'other'; status: number; bytesIn: number; bytesOut: number }): void;
}

export class Metrics implements HttpObserver {
  readonly registry = new client.Registry();
  private readonly uploads: client.Counter;
  private readonly downloads: client.Counter;
  private readonly bytesIn: client.Counter;
  private readonly bytesOut: client.Counter;
  private readonly paymentRequired: client.Counter;
  private readonly answers: client.Counter<'status'>;

  constructor(private readonly src: MetricsSources) {
    const r = this.registry;
    // Process metrics, among them nodejs_eventloop_lag_seconds (and its percentiles).
    client.collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 20 });
    this.uploads = new client.Counter({ name: 'bitdrop_uploads_total', help: 'uploads stored (201 answers)', registers: [r] });
    this.downloads = new client.Counter({ name: 'bitdrop_downloads_total', help: 'downloads served (200/206 with the file attached)', registers: [r] });
    this.bytesIn = new client.Counter({ name: 'bitdrop_http_received_bytes_total', help: 'bytes received on the public listener', registers: [r] });
    this.bytesOut = new client.Counter({ name: 'bitdrop_http_sent_bytes_total', help: 'bytes sent on the public listener', registers: [r] });
    this.paymentRequired = new client.Counter({ name: 'bitdrop_payment_required_total', help: '402 Payment Required answers', registers: [r] });
    this.answers = new client.Counter({ name: 'bitdrop_http_responses_total', help: 'answers on the public listener by status', labelNames: ['status'], registers: [r] });

    const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge<string>) => void) =>
      new client.Gauge({ name, help, labelNames, registers: [r], collect() { this.reset(); collect(this); } });

    gauge('bitdrop_store_files', 'files stored', [], (g) => g.set(src.store().files));
    gauge('bitdrop_store_bytes', 'bytes of the files stored', [], (g) => g.set(src.store().bytes));
    gauge('bitdrop_store_chunk_bytes', 'bytes of the distinct chunks stored (after dedup)', [], (g) => g.set(src.store().chunkBytes));
    gauge('bitdrop_upload_slots_in_use', 'upload chunk slots being hashed and written', [], (g) => g.set(src.store().uploadSlots.inUse));
    gauge('bitdrop_upload_slots', 'upload chunk slots at most in use at once', [], (g) => g.set(src.store().uploadSlots.max));
    gauge('bitdrop_files', 'files (and reservations) by payment state', ['state'], (g) => {
      for (const [state, v] of Object.entries(src.ledger?.()?.byState ?? {})) g.set({ state }, v.files);
    });
    gauge('bitdrop_file_bytes', 'bytes of files (and reservations) by payment state', ['state'], (g) => {
      for (const [state, v] of Object.entries(src.ledger?.()?.byState ?? {})) g.set({ state }, v.bytes);
    });
    gauge('bitdrop_unpaid_bytes', 'bytes of uploads and reservations awaiting payment', [], (g) => g.set(src.ledger?.()?.unpaidBytes ?? 0));
    const books = (g: client.Gauge<string>, f: (e: NonNullable<ReturnType<NonNullable<MetricsSources['economy']>>>) => number | null) => {
      const e = src.economy?.();
      const v = e ? f(e) : null;
      if (v !== null) g.set(v);
    };
    gauge('bitdrop_books_revenue_sats', 'revenue booked (confirmed credits), all days, sats', [], (g) => books(g, (e) => e.revenueSats));
    gauge('bitdrop_books_costs_sats', 'costs booked (cost file, fees, NMC, spent), all days, sats', [], (g) => books(g, (e) => e.costsSats));
    gauge('bitdrop_books_profit_sats', 'revenue minus costs, all days, sats', [], (g) => books(g, (e) => e.profitSats));
    gauge('bitdrop_books_cash_sats', "the operator's reserve plus every day's profit, sats", [], (g) => books(g, (e) => e.cashSats));
    gauge('bitdrop_books_runway_days', 'days the cash lasts at the last 30 days\' burn (absent: the box pays for itself)', [], (g) => books(g, (e) => e.runwayDays));
    gauge('bitdrop_disk_utilization_ratio', 'bytes stored ÷ the disk of the cost file', [], (g) => books(g, (e) => e.utilization));
    gauge('bitdrop_storage_price_sats', 'storage price in force, sats per GiB per day', [], (g) => books(g, (e) => e.storagePrice));
    gauge('bitdrop_transfer_price_sats', 'transfer price in force, sats per GiB sent', [], (g) => books(g, (e) => e.transferPrice));
    gauge('bitdrop_credits_earned_sats', 'confirmed payments received for files, in satoshis (kept when files go)', [], (g) => g.set(src.ledger?.()?.creditsEarned ?? 0));
    gauge('bitdrop_address_pool', 'file addresses derived ahead, ready for uploads (--address-pool)', [], (g) => g.set(src.addressPool?.() ?? 0));
    gauge('bitdrop_electrum_connected', '1 while connected to an Electrum server', [], (g) => g.set(src.electrum?.()?.connected ? 1 : 0));
    gauge('bitdrop_electrum_subscriptions', 'scripthash subscriptions held on the Electrum server', [], (g) => g.set(src.electrum?.()?.subscriptions ?? 0));
    gauge('bitdrop_electrum_hot_addresses', 'addresses watched closely (within the watch budget)', [], (g) => g.set(src.electrum?.()?.hot ?? 0));
    gauge('bitdrop_chain_height', 'chain tip height seen through Electrum', [], (g) => g.set(src.electrum?.()?.height ?? 0));
    gauge('bitdrop_tor_bootstrap_percent', "tor's bootstrap progress", [], (g) => g.set(src.tor?.()?.bootstrap ?? 0));
    gauge('bitdrop_tor_onion_published', '1 while the onion service is published', ['mode'], (g) => {
      const t = src.tor?.();
      g.set({ mode: t?.mode ?? 'off' }, t?.onion ? 1 : 0);
    });
    gauge('bitdrop_names', '.bit names by registration state', ['state'], (g) => {
      const counts = new Map<string, number>();
      for (const n of src.names?.() ?? []) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
      for (const [state, n] of counts) g.set({ state }, n);
    });
  }

  answered(a: { kind: 'upload' | 'download' | 'other'; status: number; bytesIn: number; bytesOut: number }): void {
    if (a.kind === 'upload') this.uploads.inc();
    if (a.kind === 'download') this.downloads.inc();
    if (a.status === 402) this.paymentRequired.inc();
    this.answers.inc({ status: String(a.status) });
    if (a.bytesIn > 0) this.bytesIn.inc(a.bytesIn);
    if (a.bytesOut > 0) this.bytesOut.inc(a.bytesOut);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
