import { DERIVED_TABLES } from '../definition/layout';
import { ConsentPolicy, isConsentPolicy } from '../definition/pipeline';
import type { Catalog, Lake } from './lake';

/**
 * A command asked for another consent policy than the lake's without saying it means to change it.
 * A usage error: nothing ran.
 */
export class ConsentPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConsentPolicyError';
  }
}

/**
 * The consent policy a lake was built with: the one its catalog records, or for a lake built before
 * catalogs recorded it, the one its tables record (since-consent when they disagree: the narrower).
 * Undefined for a lake no run has built yet.
 */
export function lakeConsentPolicy(catalog: Catalog): ConsentPolicy | undefined {
  if (catalog.consentPolicy) return catalog.consentPolicy;
  const recorded = new Set(
    DERIVED_TABLES.flatMap((t) => {
      const policy = catalog.tables[t]?.parameters?.consent_policy;
      return policy && isConsentPolicy(policy) ? [policy] : [];
    }),
  );
  if (recorded.size === 0) return undefined;
  return recorded.has('since-consent') ? 'since-consent' : 'any';
}

export interface ConsentChoice {
  /** The policy the run uses. */
  policy: ConsentPolicy;
  /** The run changes the lake's policy: it rebuilds every table under the new one. */
  changed: boolean;
  /** The policy the lake had (undefined for a new lake). */
  was?: ConsentPolicy;
}

/**
 * The policy a run uses: the lake's, unless it has none yet (then the requested one, or `any`). Asking
 * for another one throws ConsentPolicyError naming both, unless `change` (--change-consent) says so.
 */
export function chooseConsentPolicy(
  lake: Lake,
  catalog: Catalog,
  requested: ConsentPolicy | undefined,
  change = false,
): ConsentChoice {
  const was = lakeConsentPolicy(catalog);
  if (change && requested === undefined)
    throw new ConsentPolicyError('--change-consent needs --consent POLICY: the policy to rebuild the lake under');
  if (was === undefined) return { policy: requested ?? 'any', changed: false };
  if (requested === undefined || requested === was) return { policy: was, changed: false, was };
  if (!change)
    throw new ConsentPolicyError(
      `the lake ${lake.root} was built with consent policy ${was}, and --consent asks for ${requested}: ` +
        `leave --consent out to use ${was}, or give --change-consent to rebuild every table under ${requested}`,
    );
  return { policy: requested, changed: true, was };
}
