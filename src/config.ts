/** Local configuration, read once from the environment, with errors that name what is wrong. */

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Used only when STEDI_PII_SALT is unset, for sample data; real data needs a secret salt. */
export const DEVELOPMENT_SALT = 'stedi-local-development-salt';

export interface PiiSalt {
  value: string;
  /** True when the development salt stands in for an unset STEDI_PII_SALT. */
  isDevelopmentSalt: boolean;
}

export function readPiiSalt(env: NodeJS.ProcessEnv = process.env): PiiSalt {
  const value = env.STEDI_PII_SALT;
  if (value === undefined) return { value: DEVELOPMENT_SALT, isDevelopmentSalt: true };
  if (value.length < 16) throw new ConfigError('STEDI_PII_SALT must be at least 16 characters long');
  return { value, isDevelopmentSalt: false };
}

/** The salt for a command that writes the lake: says on stderr when the development salt stands in. */
export function readPiiSaltForRun(env: NodeJS.ProcessEnv = process.env): PiiSalt {
  const salt = readPiiSalt(env);
  if (salt.isDevelopmentSalt)
    process.stderr.write(
      'warning: STEDI_PII_SALT is not set; using the development salt (fine for sample data only)\n',
    );
  return salt;
}
