export * from './authorization-list.ts';
export * from './authorize.ts';
