// A VM's virtual PF outside its filters: the eswitch mode and each VF's
// administrator settings (rtnetlink IFLA_VF_*), as mlx5 keeps them in
// vport->info, and the legacy-mode flows derived from them. Requests are
// validated here (rules/vfvalidate.ts); a host PF backend, when the VFs are
// physical, is asked first and its answer wins. No flows are installed here.
import { Errno, VpfError } from '../rules/errors.js';
import { defaultVfSettings, type VfRequest, type VfSettings } from '../rules/vf.js';
import { applyVfRequest } from '../rules/vfvalidate.js';
import { translateLegacy, type LegacyTranslation } from '../translator/legacy.js';
import type { VmRecord } from './records.js';

/** How the VM's VF settings are realized: on its bridge, or also by a host NIC (physical VFs). */
export interface VfBackend {
  /** Applies one request to the host VF behind guest VF `req.vf`; the kernel's answer goes back to the guest unchanged. */
  apply(req: VfRequest): Promise<{ errno: number; message?: string }>;
  close?(): void;
}

export type EswitchMode = 'legacy' | 'switchdev';

export class VfState {
  /** The legacy flows, and what they were derived from (settings array and uplink carrier). */
  private legacyMemo: { from: VfSettings[] | undefined; up: boolean; t: LegacyTranslation } | undefined;

  constructor(
    private readonly rec: VmRecord,
    private readonly uplinkUp: () => boolean = () => true,
    readonly backend?: VfBackend,
  ) {}

  get mode(): EswitchMode {
    return this.rec.mode ?? 'switchdev';
  }

  /** Every VF's administrator settings (mlx5 defaults until the guest sets them). */
  settings(): VfSettings[] {
    const have = this.rec.vfSettings ?? [];
    return Array.from({ length: this.rec.vfs }, (_, n) => have[n] ?? defaultVfSettings());
  }

  /** Legacy mode's flows: derived from the settings and the uplink's carrier, recomputed when either changed. */
  legacy(): LegacyTranslation {
    const up = this.uplinkUp();
    const m = this.legacyMemo;
    if (m && m.from === this.rec.vfSettings && m.up === up) return m.t;
    const t = translateLegacy({ ports: this.rec.ports, vfs: this.settings(), uplinkUp: up });
    this.legacyMemo = { from: this.rec.vfSettings, up, t };
    return t;
  }

  /**
   * devlink eswitch mode, as mlx5 switches it: VF settings are kept (link state
   * back to auto on entering legacy, esw_legacy_enable). The caller drops the
   * filters. False when the mode is already `mode`.
   */
  setMode(mode: EswitchMode): boolean {
    if (mode === this.mode) return false;
    this.rec.mode = mode;
    if (mode === 'legacy') this.rec.vfSettings = this.settings().map((s) => ({ ...s, linkState: 'auto' as const }));
    return true;
  }

  /**
   * setvf: do_setvfinfo per IFLA_VF_INFO, stopping at the first error with what
   * came before applied. Returns the new settings (undefined: nothing changed)
   * and the refusal, if any; a host kernel's refusal may be a bare errno.
   */
  async setVf(requests: readonly VfRequest[]): Promise<{ settings?: VfSettings[]; error?: VpfError }> {
    const all = this.settings().map((s) => ({ ...s }));
    let error: VpfError | undefined;
    for (const req of requests) {
      if (this.backend) {
        const answer = await this.backend.apply(req);
        if (answer.errno) {
          error = new VpfError(answer.errno, answer.message ?? '');
          break;
        }
      }
      const r = applyVfRequest(all[req.vf] ?? defaultVfSettings(), req, {
        numVfs: this.rec.vfs,
        mode: this.mode,
        emulate8021ad: true,
        // The one place these are refused: the bridge has no egress queues to guarantee a rate; a host NIC may.
        minTxRateSupported: !!this.backend,
        rssQuerySupported: !!this.backend,
      });
      if (req.vf < all.length) all[req.vf] = r.settings;
      if ('error' in r) {
        error = r.error;
        break;
      }
    }
    return { ...this.changed(all), ...(error ? { error } : {}) };
  }

  /** IFLA_VF ... rx mode (promisc, allmulti) of one VF. */
  rxMode(vf: number, mode: { promisc?: boolean; allmulti?: boolean }): { settings?: VfSettings[] } {
    if (vf >= this.rec.vfs) throw new VpfError(Errno.ENODEV, `no vf${vf} on this VM`);
    const all = this.settings().map((s) => ({ ...s }));
    const s = all[vf]!;
    if (mode.promisc !== undefined) s.promisc = mode.promisc;
    if (mode.allmulti !== undefined) s.allmulti = mode.allmulti;
    return this.changed(all);
  }

  /** Puts `all` in the record when it differs from what is there (a new array: legacy() sees the change). */
  private changed(all: VfSettings[]): { settings?: VfSettings[] } {
    if (JSON.stringify(all) === JSON.stringify(this.settings())) return {};
    this.rec.vfSettings = all;
    return { settings: all };
  }
}
