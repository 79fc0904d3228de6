export * from './authorization-list.ts';
export * from './authorize.ts';
export * from './address-comparison.ts';
