import { ApiTokenService } from './domain/api-tokens.ts'
import { ComplianceService } from './domain/compliance.ts'
import { DirectoryPhoneService } from './domain/directory-phones.ts'
import { KeyedHasher } from './domain/keyed-hash.ts'
import type { UserRefResolver } from './domain/user-refs.ts'
import type { Services } from './wiring.ts'

/** The automation API's and the compliance export's services, built from the shared ones. */
export interface AutomationServices {
  tokens: ApiTokenService
  userRefs: UserRefResolver
  phones: DirectoryPhoneService
  compliance: ComplianceService
}

const built = new WeakMap<Services, AutomationServices>()

/**
 * Built once per Services (the API and the admin pages share them). Kept beside wiring.ts rather than in it while
 * the automation API settles; routes call this instead of importing db/ themselves.
 */
export function automationServices (services: Services): AutomationServices {
  const existing = built.get(services)
  if (existing !== undefined) return existing
  const { config, audit, clock, engine } = services
  const userRefs = services.stores.userRefs
  const automation: AutomationServices = {
    tokens: new ApiTokenService(
      services.stores.apiTokens,
      [config.encryptionKey, ...config.previousEncryptionKeys].map((key) => new KeyedHasher(key)),
      audit,
      clock
    ),
    userRefs,
    phones: new DirectoryPhoneService(services.stores.directoryPhones, userRefs, audit, config.phoneDefaultRegion),
    compliance: new ComplianceService(services.stores.compliance, {
      campaigns: () => engine.campaigns(),
      // The engine's own default: used for users no campaign targets.
      defaultPolicy: engine.defaultMethodPolicy
    }, clock)
  }
  built.set(services, automation)
  return automation
}
