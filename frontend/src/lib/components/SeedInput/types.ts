/** The seed value: null or -1 for random, else the seed (0 .. 2**53 - 1 in the UI). */
export type Seed = number | null;
