// Who is signed in, kept in localStorage so a reload stays signed in.

const listeners = new Set();

export const store = {
  token: localStorage.getItem('token'),
  me: JSON.parse(localStorage.getItem('me') || 'null'),

  signIn(token, me) {
    this.token = token;
    this.me = me;
    localStorage.setItem('token', token);
    localStorage.setItem('me', JSON.stringify(me));
    listeners.forEach((fn) => fn());
  },

  signOut(reason) {
    this.token = null;
    this.me = null;
    localStorage.removeItem('token');
    localStorage.removeItem('me');
    this.signOutReason = reason || null;
    listeners.forEach((fn) => fn());
  },

  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  isInstructor() {
    return this.me && (this.me.role === 'instructor' || this.me.role === 'admin');
  },
};
