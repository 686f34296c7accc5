// The version of the runtime programs: package.json's, put into each bundle at build time (scripts/build.mjs).
declare const __HASETUP_VERSION__: string | undefined;

export const VERSION: string = typeof __HASETUP_VERSION__ === 'string' ? __HASETUP_VERSION__ : 'dev';
