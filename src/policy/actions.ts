// The actions of the policy schema (issue 5, SECURITY.md 6). Each DICOMweb endpoint asks for exactly one.

export const ACTIONS = ['search', 'read', 'store', 'delete', 'share', 'admin'] as const;
export type Action = (typeof ACTIONS)[number];
